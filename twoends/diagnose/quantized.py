"""Checks for quantized models (TFLite uint8 / int8): both ends in the wrong units.

- ``input-quantization``: the batch is not in the units the model's input was quantized for.
  A quantized input stands for float values ``(q - zero_point) * scale`` over a fixed range; float
  inputs mostly outside it are clipped, and inputs spanning a sliver of it use a handful of the
  256 levels (0..1 pixels given to a model quantized for 0..255, or the reverse). A batch of
  integer codes that uses a handful of levels is float pixels cast to uint8 without quantizing.
- ``quantized-outputs``: the outputs read as logits are integer codes (0..255 or -128..127),
  not dequantized: softmax of codes is a confident answer about nothing.

The model's quantization is read from a twoends backend (``input_quantization`` /
``output_quantization``) or a LiteRT / ``tf.lite`` interpreter (its tensor details).
No framework is imported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends.tflite import Quantization, dequantize
from ..head.arrays import to_numpy
from .finding import Finding

__all__ = ["quantization_of", "input_quantization", "quantized_outputs", "run_on_classifier"]

# a real photo batch correctly quantized spans far more levels than this
_FEW_LEVELS = 16
_CLIPPED = 0.01


def quantization_of(model: Any) -> tuple[Quantization | None, Quantization | None] | None:
    """(input, output) quantization of a twoends TFLite backend or an interpreter; None for other models."""
    if hasattr(model, "input_quantization") and hasattr(model, "output_quantization"):
        return model.input_quantization, model.output_quantization
    if callable(getattr(model, "get_input_details", None)) and callable(getattr(model, "get_output_details", None)):

        def read(detail):
            scale, zero_point = detail.get("quantization", (0.0, 0))
            return Quantization(np.dtype(detail["dtype"]).name, float(scale), int(zero_point))

        return read(model.get_input_details()[0]), read(model.get_output_details()[0])
    return None


def input_quantization(batch: Any, q: Quantization | None) -> list[Finding]:
    """Check 'input-quantization' on the batch fed to the model (floats to be quantized, or codes)."""
    x = np.asarray(to_numpy(batch))
    if x.dtype.kind in "iu":
        levels = np.unique(x).size
        if levels > _FEW_LEVELS or (q is not None and not q.quantized and q.dtype == x.dtype.name):
            return []
        return [
            Finding(
                "input-quantization",
                "error",
                f"the {x.dtype.name} input uses {levels} of its 256 levels: float pixels "
                "cast to integers without quantizing",
                seen=f"a batch of {x.shape[0]} inputs takes only the values {np.unique(x)[:8].tolist()}",
                why="casting 0..1 (or normalised) floats to uint8 keeps their integer part: the model sees a nearly "
                "black image and still answers",
                fix="quantize with the input tensor's scale and zero point: q = round(x / scale) + zero_point, "
                "clipped to the type's range (twoends.load('tflite:...') does it from the model's spec)",
                evidence={"levels": levels, "dtype": x.dtype.name},
            )
        ]
    if q is None or not q.quantized or x.size == 0:
        return []
    lo, hi = q.float_range()
    clipped = float(np.mean((x < lo - q.scale / 2) | (x > hi + q.scale / 2)))
    codes = np.clip(np.rint(x / q.scale) + q.zero_point, *_limits(q))
    levels = int(np.unique(codes).size)
    if clipped <= _CLIPPED and levels > _FEW_LEVELS:
        return []
    seen = (
        f"the batch's values lie in {float(x.min()):.4g}..{float(x.max()):.4g}; the {q.dtype} input stands for "
        f"{lo:.4g}..{hi:.4g} (scale {q.scale:.6g}, zero point {q.zero_point}): {clipped:.0%} of the values are "
        f"clipped and the rest use {levels} of the 256 levels"
    )
    return [
        Finding(
            "input-quantization",
            "error",
            "the inputs are not in the units the model's input was quantized for",
            seen=seen,
            why="a quantized input only represents the range it was calibrated on: values outside it are clipped, "
            "values in a sliver of it collapse to a few levels, and the model answers anyway",
            fix=f"preprocess to the range the model was calibrated on ({lo:.4g}..{hi:.4g}): e.g. 0..255 pixels "
            "need spec={'scale': 1.0, 'mean': (0, 0, 0), 'std': (1, 1, 1)}, 0..1 pixels the default scale "
            "1/255; the float model's own preprocessing is the one to use",
            evidence={
                "batch_range": [float(x.min()), float(x.max())],
                "input_range": [lo, hi],
                "clipped_share": clipped,
                "levels_used": levels,
            },
        )
    ]


def _limits(q: Quantization) -> tuple[int, int]:
    info = np.iinfo(np.dtype(q.dtype))
    return info.min, info.max


def quantized_outputs(outputs: Any, q: Quantization | None = None) -> list[Finding]:
    """Check 'quantized-outputs' on what is read as the model's logits (or probabilities)."""
    z = np.asarray(to_numpy(outputs))
    codes = z.dtype.kind in "iu"
    if not codes and q is not None and q.quantized and z.size:
        lo, hi = _limits(q)  # floats that are whole numbers in the code range, where codes mean something else
        codes = bool(
            np.all(z == np.round(z)) and z.min() >= lo and z.max() <= hi and (q.scale, q.zero_point) != (1.0, 0)
        )
    if not codes:
        return []
    evidence: dict = {"dtype": z.dtype.name, "range": [float(z.min()), float(z.max())]}
    seen = f"{z.dtype.name} outputs from {float(z.min()):.4g} to {float(z.max()):.4g}: integer codes"
    fix = "dequantize with the output tensor's quantization: (q - zero_point) * scale"
    if q is not None and q.quantized:
        right = dequantize(z.astype(np.int64), q)
        seen += (
            f"; dequantized (scale {q.scale:.6g}, zero point {q.zero_point}) they are {float(right.min()):.4g}.."
            f"{float(right.max()):.4g}"
        )
        fix += f" = (q - {q.zero_point}) * {q.scale:.6g}"
        evidence.update(scale=q.scale, zero_point=q.zero_point)
    return [
        Finding(
            "quantized-outputs",
            "error",
            "the model's outputs are quantized codes read without dequantizing",
            seen=seen,
            why="a softmax over codes (or codes / 255 read as probabilities) is a confident answer about nothing: "
            "the scale and zero point give them their meaning",
            fix=fix + "; twoends.load('tflite:...') dequantizes before the head",
            evidence=evidence,
        )
    ]


def run_on_classifier(run: Any, backend: Any, batch: Any, no_batch: str | None) -> None:
    """Both checks on a twoends Classifier's backend and the batch its plan made (``run`` is the doctor's runner)."""
    q = quantization_of(backend)
    q_in, q_out = q if q is not None else (None, None)
    if batch is not None and q_in is not None and q_in.quantized and np.asarray(batch).dtype.kind in "iu":
        batch_values = np.asarray(batch, dtype=np.float32)  # the backend quantizes uint8 pixels as values
    else:
        batch_values = batch
    run("input-quantization", no_batch, lambda: input_quantization(batch_values, q_in))
    run("quantized-outputs", no_batch, lambda: quantized_outputs(backend.forward(batch), q_out))
