"""What a model's own shapes and last op say about its two ends, shared by the Keras, TensorFlow
and TFLite backends. Plain data in, plain data out: no framework is imported here.

- ``outputs_from_activation``: the last op's activation ("softmax", "Softmax", "LOGISTIC"...) ->
  whether the outputs are logits or probabilities, the activation, and a note that says so.
- ``spec_from_input_shape``: a rank-4 image input shape -> an ImageSpec with the input size and
  layout (and dtype), the rest left to twoends' defaults, and a note that says so.
- ``pick_output``, ``run_in_chunks``, ``class_outputs``: the choice of a model file's output, a
  fixed batch axis run in padded chunks, and outputs shaped [batch, classes] (ONNX, TFLite, TF).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "final_activation",
    "outputs_from_activation",
    "spec_from_input_shape",
    "num_classes",
    "pick_output",
    "run_in_chunks",
    "class_outputs",
]

# the names frameworks give the ops that end a classifier in probabilities or log-probabilities
_NAMES = {
    "softmax": "softmax",
    "sigmoid": "sigmoid",
    "logistic": "sigmoid",
    "log_softmax": "log_softmax",
    "logsoftmax": "log_softmax",
}


def _last_layer(model: Any) -> Any:
    """The layer that produces a Keras model's (first) output: Keras 3 and Keras 2 (tf-keras) alike."""
    outputs = getattr(model, "outputs", None) or []
    history = getattr(outputs[0], "_keras_history", None) if outputs else None
    layer = getattr(history, "operation", None) or (history[0] if isinstance(history, tuple) else None)
    if layer is None and getattr(model, "layers", None):
        layer = model.layers[-1]
    return layer


def final_activation(model: Any) -> str | None:
    """The activation a Keras model's last layer applies ("softmax", "relu", ...), or None.

    Read by names (a ``Softmax`` layer, a layer's ``activation`` function), so that one reading
    serves Keras 3 and tf-keras without importing either.
    """
    layer = _last_layer(model)
    if layer is None:
        return None
    if type(layer).__name__ == "Softmax":
        return "softmax"
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else None


def outputs_from_activation(act: str | None, *, where: str = "the last layer") -> tuple[str, str | None, str | None]:
    """(outputs, activation, note) for the activation ``where`` applies ("relu", "Softmax", "LOGISTIC", ...)."""
    if act is None:
        return "logits", None, None
    key = _NAMES.get(act.lower().replace("-", "_"))
    if key in ("softmax", "sigmoid"):
        return (
            "probabilities",
            key,
            (f"{where} applies {key}: its outputs are probabilities, used as they are (not {key}ed again)"),
        )
    if key == "log_softmax":
        return (
            "logits",
            "softmax",
            (f"{where} applies log_softmax: log-probabilities, which softmax maps back unchanged"),
        )
    if act.lower() in ("linear", "identity"):
        return "logits", None, None
    return "logits", None, f"{where} applies {act}: its outputs are taken as logits"


def spec_from_input_shape(shape: Sequence[Any], *, dtype: str = "float32") -> tuple[Any, str | None]:
    """(ImageSpec or None, note) from an input shape such as (None, 224, 224, 3) or (1, 3, 224, 224)."""
    shape = tuple(shape)
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        return None, None
    from twoends.preprocess import ImageSpec

    _, a, b, c = shape
    layout, size = ("NHWC", (a, b)) if c in (1, 3) else ("NCHW", (b, c))
    spec = ImageSpec(input_size=size, layout=layout, dtype=dtype)
    return spec, (
        f"input size {size[0]}x{size[1]} and layout {layout} from the model's input shape; the "
        "resize and normalisation are twoends' defaults unless spec=... says otherwise"
    )


def num_classes(shape: Sequence[Any]) -> int | None:
    """The number of classes of a [batch, classes] output shape, when it is fixed."""
    shape = tuple(shape)
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
        return shape[1]
    return None


def pick_output(names: Sequence[str], wanted: str | int | None) -> tuple[int, str]:
    """(index, why) of the output to read: the one asked for (name or index), the only one, the one
    named "logits", else the first (said so)."""
    from twoends.errors import ConfigError

    names = list(names)
    if wanted is not None:
        if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 <= wanted < len(names):
            return wanted, f"output {names[wanted]!r} (index {wanted}, as asked)"
        if wanted in names:
            return names.index(wanted), f"output {wanted!r} (as asked)"
        raise ConfigError(f"output={wanted!r} is not an output of the model; its outputs are {names}")
    if len(names) == 1:
        return 0, f"output {names[0]!r}"
    if "logits" in names:
        return names.index("logits"), f"output 'logits' of {names}"
    return 0, f"output {names[0]!r}, the first of {names} (pass output=NAME for another)"


def run_in_chunks(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, n: int) -> np.ndarray:
    """Run a model whose batch axis is fixed at ``n`` on any batch: chunks of n, the last one padded
    with copies of its last input (whose outputs are dropped)."""
    parts = []
    for start in range(0, x.shape[0], n):
        chunk = x[start : start + n]
        size = chunk.shape[0]
        if size < n:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], n - size, axis=0)])
        parts.append(run(chunk)[:size])
    return np.concatenate(parts)


def class_outputs(info: Any, out: np.ndarray) -> tuple[np.ndarray, Any]:
    """Outputs as [batch, classes] (one score per input becomes one column), and the ModelInfo with
    the number of classes filled in from the first batch when the model did not say it."""
    if out.ndim == 1:
        out = out[:, None]
    if info.num_outputs is None and out.ndim == 2:
        info = dataclasses.replace(info, num_outputs=int(out.shape[1]))
    return out, info
