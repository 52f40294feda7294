"""TFLite / LiteRT backend: a ``.tflite`` file run with ``ai-edge-litert`` (TensorFlow's own
``tf.lite.Interpreter`` is deprecated; this module does not import TensorFlow).

What is read, and from where (explicit arguments always win):

- the input: one image tensor, its size and layout (NHWC, TFLite's) from its shape, its element
  type (float32, uint8, int8) and quantization (scale, zero point);
- the batch axis: a dynamic one (shape signature -1) is resized to each batch; a fixed one
  (converters write 1) is run in chunks of that size, the last one padded;
- quantized ends: the batch from the spec is in the float model's units (0..255 pixels for a
  model trained on them, normalised values for others); it is quantized with the input's scale
  and zero point, ``q = round(x / scale) + zero_point`` clipped to the type's range, and the
  output is dequantized, ``(q - zero_point) * scale``, before the head sees it. A uint8 output
  read as it is (0..255) means nothing; the notes say what was done;
- whether the outputs are already probabilities: the op producing the output, followed back
  through QUANTIZE / DEQUANTIZE / RESHAPE, is SOFTMAX or LOGISTIC;
- spec, labels, activation: from the sidecar ``X.tflite.json`` (or ``X.twoends.json``) that
  ``twoends export`` writes; without one, only the size and layout come from the file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from twoends.backends.base import Backend, ModelInfo
from twoends.backends.model_ends import (
    class_outputs,
    num_classes,
    outputs_from_activation,
    pick_output,
    run_in_chunks,
    spec_from_input_shape,
)
from twoends.errors import ConfigError, InputError, ModelError
from twoends.options import RunOptions
from twoends.sidecar import find_sidecar, read_sidecar

__all__ = ["TFLiteBackend", "Quantization", "build", "from_path", "quantize", "dequantize"]

_PASS_THROUGH = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE", "CAST"}


class Quantization(NamedTuple):
    """A tensor's element type and affine quantization; ``scale == 0`` means not quantized."""

    dtype: str
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale > 0 and np.dtype(self.dtype).kind in "iu"

    def float_range(self) -> tuple[float, float]:
        """The float values the quantized type can represent: [(min - zp) * scale, (max - zp) * scale]."""
        info = np.iinfo(np.dtype(self.dtype))
        return (info.min - self.zero_point) * self.scale, (info.max - self.zero_point) * self.scale

    def describe(self) -> str:
        if not self.quantized:
            return self.dtype
        lo, hi = self.float_range()
        return f"{self.dtype} (scale {self.scale:.6g}, zero point {self.zero_point}: values {lo:.4g}..{hi:.4g})"


def _quantization(detail: dict) -> Quantization:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    params = detail.get("quantization_parameters") or {}
    if len(params.get("scales", ())) > 1:
        raise ModelError(
            f"tensor {detail.get('name')!r} is quantized per channel; twoends runs image inputs and "
            "class outputs quantized per tensor"
        )
    return Quantization(np.dtype(detail["dtype"]).name, float(scale), int(zero_point))


def quantize(x: np.ndarray, q: Quantization) -> np.ndarray:
    """Float model inputs to the tensor's integer codes: round(x / scale) + zero_point, clipped.

    Halves round away from zero, as TFLite's own QUANTIZE op does (std::round), not to even.
    """
    info = np.iinfo(np.dtype(q.dtype))
    v = np.asarray(x, dtype=np.float32) / np.float32(q.scale)
    codes = np.copysign(np.floor(np.abs(v) + 0.5), v) + q.zero_point
    return np.clip(codes, info.min, info.max).astype(q.dtype)


def dequantize(codes: np.ndarray, q: Quantization) -> np.ndarray:
    """Integer codes back to the values they stand for: (codes - zero_point) * scale, as float32."""
    return ((np.asarray(codes).astype(np.int32) - q.zero_point) * np.float32(q.scale)).astype(np.float32)


def _final_op(interpreter: Any, tensor_index: int) -> str | None:
    """The op that produces a tensor, through pass-through ops; None when the graph cannot be read
    (``_get_ops_details`` is LiteRT's own listing, not a promised API: a failure means "unknown")."""
    try:
        ops = interpreter._get_ops_details()
    except Exception:  # noqa: BLE001 - any failure of a private call means "unknown"
        return None
    # a delegate (XNNPACK) node lists the tensors of the ops it took over as its own: skip it
    producer = {int(o): op for op in ops if op.get("op_name") != "DELEGATE" for o in op.get("outputs", ())}
    index = tensor_index
    for _ in range(16):
        op = producer.get(index)
        if op is None:
            return None
        if op["op_name"] not in _PASS_THROUGH:
            return op["op_name"]
        index = int(op["inputs"][0])
    return None


# --------------------------------------------------------------------------- backend


class TFLiteBackend(Backend):
    """Run a TFLite model with LiteRT's interpreter. ``forward`` returns float32 NumPy outputs [B, C]."""

    def __init__(
        self, interpreter: Any, *, info: ModelInfo, input_detail: dict, output_detail: dict, dynamic_batch: bool
    ) -> None:
        self.interpreter = interpreter
        self.info = info
        self.input_index = int(input_detail["index"])
        self.output_index = int(output_detail["index"])
        self.input_quantization = _quantization(input_detail)
        self.output_quantization = _quantization(output_detail)
        self.input_shape = tuple(int(d) for d in input_detail["shape"])
        self.dynamic_batch = dynamic_batch
        self.device = "cpu"
        self._batch = self.input_shape[0]
        self._lock = threading.Lock()  # one interpreter, one invocation at a time

    def forward(self, batch: Any) -> np.ndarray:
        x = self._prepare(np.asarray(batch))
        with self._lock:
            # a fixed batch axis: chunks of that size, the last one padded
            out = self._run(x) if self.dynamic_batch else run_in_chunks(self._run, x, self._batch)
        if self.output_quantization.quantized:
            out = dequantize(out, self.output_quantization)
        elif out.dtype != np.float32:
            out = out.astype(np.float32)
        out, self.info = class_outputs(self.info, out)
        return out

    def raw_forward(self, batch: Any) -> np.ndarray:
        """The output tensor as the interpreter leaves it (codes for a quantized model): for the doctor."""
        x = self._prepare(np.asarray(batch))
        with self._lock:
            return self._run(x)

    def describe(self) -> str:
        q = "" if not self.input_quantization.quantized else f", quantized {self.input_quantization.dtype}"
        return f"TFLiteBackend({self.info.name}, LiteRT{q})"

    def _run(self, x: np.ndarray) -> np.ndarray:
        it = self.interpreter
        if self.dynamic_batch and x.shape[0] != self._batch:
            it.resize_tensor_input(self.input_index, [x.shape[0], *self.input_shape[1:]])
            it.allocate_tensors()
            self._batch = x.shape[0]
        it.set_tensor(self.input_index, np.ascontiguousarray(x))
        it.invoke()
        return it.get_tensor(self.output_index).copy()  # the buffer is reused by the next invoke

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        want = self.input_shape
        if x.ndim != len(want) or tuple(x.shape[1:]) != want[1:]:
            raise InputError(
                f"{self.info.name} takes inputs of shape [batch, {', '.join(map(str, want[1:]))}], got "
                f"{list(x.shape)}: set the spec's input_size and layout (NHWC) to match, or pass the "
                "model's own spec"
            )
        q = self.input_quantization
        if q.quantized:
            # the spec's values are the float model's inputs (uint8 pixels included): quantize them
            return quantize(x, q)
        if x.dtype == np.dtype(q.dtype):
            return x
        if np.dtype(q.dtype).kind == "f" and x.dtype.kind in "fu":
            return x.astype(q.dtype)
        raise InputError(
            f"{self.info.name} takes {q.dtype} inputs, got {x.dtype.name}: set spec={{'dtype': '{q.dtype}'}}"
        )


# --------------------------------------------------------------------------- building


def _interpreter(path: Path, num_threads: int | None):
    from twoends.extras import require

    Interpreter = require("ai_edge_litert.interpreter", "'tflite:' models (LiteRT)", error=ModelError).Interpreter
    try:
        return Interpreter(model_path=str(path), num_threads=num_threads)
    except Exception as e:  # LiteRT raises ValueError / RuntimeError for files it cannot read
        raise ModelError(f"LiteRT cannot load {path}: {e}") from e


def _pick_output(details: Sequence[dict], wanted: str | int | None, side: dict) -> tuple[dict, str]:
    index, why = pick_output([d["name"] for d in details], wanted if wanted is not None else side.get("output_name"))
    return details[index], why


def from_path(
    path: str | Path,
    *,
    run: RunOptions | None = None,
    device: str | None = None,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    output: str | int | None = None,
    name: str | None = None,
    sidecar: str | Path | bool | None = None,
    num_threads: int | None = None,
) -> TFLiteBackend:
    """A backend for the ``.tflite`` file at ``path``; ``sidecar``: a path, False to ignore any, None to look."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(
            f"no TFLite model at {path}: expected a path to a .tflite file, as in 'tflite:path/model.tflite'"
        )
    run = RunOptions.of(run, device=device)
    run.require("a TFLite model", {"device"})
    if run.device not in ("auto", "cpu"):
        raise ConfigError(
            f"device={run.device!r}: twoends runs TFLite models on the CPU with LiteRT's interpreter; "
            "use device='cpu' or 'auto'"
        )
    interpreter = _interpreter(path, num_threads)
    inputs, outs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1:
        raise ModelError(
            f"{path.name} has {len(inputs)} inputs {[(d['name'], d['shape'].tolist()) for d in inputs]}; "
            "twoends runs image classifiers with one input"
        )
    inp = inputs[0]
    notes: list[str] = []
    side: dict = {}
    if sidecar is not False:
        side_path = Path(sidecar) if sidecar not in (None, True) else find_sidecar(path)
        if side_path is not None:
            side = read_sidecar(side_path)
            notes.append(f"spec, labels and activation from the sidecar {side_path.name}")
    out, why = _pick_output(outs, output, side)
    q_in, q_out = _quantization(inp), _quantization(out)
    if q_in.dtype not in ("float32", "uint8", "int8") or (q_in.dtype != "float32" and not q_in.quantized):
        raise ModelError(
            f"{path.name}: the input is {q_in.describe()}; expected float32, or uint8 / int8 with a "
            "scale and zero point"
        )
    notes.append(f"input {inp['name']!r} {inp['shape_signature'].tolist()} {q_in.describe()}; {why}")
    if q_in.quantized:
        notes.append(
            f"quantized input: the spec's float values are quantized with the input's scale and zero point "
            f"(q = round(x / {q_in.scale:.6g}) + {q_in.zero_point}, clipped to {q_in.dtype})"
        )
    if q_out.quantized:
        notes.append(
            f"quantized output: {q_out.dtype} codes are dequantized ((q - {q_out.zero_point}) * "
            f"{q_out.scale:.6g}) before the head; read raw they would mean nothing"
        )
    dynamic = int(inp["shape_signature"][0]) == -1
    if not dynamic and int(inp["shape"][0]) != 1:
        notes.append(
            f"the model has a fixed batch of {int(inp['shape'][0])}: batches run in chunks of it, the last one padded"
        )
    elif not dynamic:
        notes.append("the model has a fixed batch of 1: batches are run one row at a time")
    interpreter.allocate_tensors()

    op = _final_op(interpreter, int(out["index"]))
    graph_outputs, graph_activation, note = outputs_from_activation(op, where="the graph's last op")
    if graph_activation is not None:  # a final SOFTMAX / LOGISTIC / LOG_SOFTMAX; any other op gives logits
        notes.append(note)
    if op is None:
        notes.append(
            "the graph's last op was not read: the outputs are taken as logits; pass "
            "outputs='probabilities' if they are not"
        )

    spec_value = side.get("spec")
    if isinstance(spec_value, dict):
        from twoends.preprocess import ImageSpec

        spec_value = ImageSpec.from_dict(spec_value)
    elif spec_value is None:
        spec_value, note = spec_from_input_shape(inp["shape"].tolist())
        notes += [note] if note else []
    if spec is not None:
        spec_value = spec_value.replace(**spec) if isinstance(spec, dict) and spec_value is not None else spec
    info = ModelInfo(
        name=name or side.get("model") or path.stem,
        spec=spec_value,
        labels=labels if labels is not None else side.get("labels"),
        activation=activation or side.get("activation") or graph_activation,
        outputs=outputs or side.get("outputs") or graph_outputs,
        num_outputs=num_classes(out["shape_signature"].tolist()),
        notes=tuple(notes),
    )
    return TFLiteBackend(interpreter, info=info, input_detail=inp, output_detail=out, dynamic_batch=dynamic)


def build(rest: str, **options: Any) -> TFLiteBackend:
    """The ``tflite:`` prefix: ``load("tflite:path/model.tflite", ...)``."""
    from twoends.backends import check_options

    check_options(from_path, options, "a TFLite model")
    return from_path(rest, **options)
