"""TensorFlow / Keras -> TFLite: the TensorFlow half of ``twoends export --tflite``.

The model is traced as a ``tf.function`` of one float32 image batch with a dynamic batch axis
(``training=False`` for Keras models) and converted with TensorFlow's ``TFLiteConverter``:

- float: the converter's default, float32 in and out;
- full-integer (``quantize="uint8"`` or ``"int8"``): ``Optimize.DEFAULT``, the integer builtin ops
  only (``TFLITE_BUILTINS_INT8``: no float fallback), uint8 / int8 input and output tensors, and the
  activation ranges calibrated on ``representative`` (preprocessed images, as the float model takes them).

``fold_batchnorm=True`` first rewrites a Sequential Keras model without its BatchNormalization
layers (keras_fold.py: exact in float; the converter cannot fold a BatchNormalization that follows a
ReLU, and its int8 MUL / ADD then costs top-1 answers).

Sources: a Keras 3 model on the TensorFlow backend, a tf-keras model, a SavedModel signature, a
tf.function with an input signature. Importing this module imports TensorFlow.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from twoends.backends.tf_first import load_triton_first

load_triton_first()  # before TensorFlow: see tf_first.py

import tensorflow as tf  # noqa: E402

from twoends.errors import ConfigError, ModelError  # noqa: E402

__all__ = ["QUANTIZE", "convert", "fold", "run", "traceable_of"]

QUANTIZE = ("uint8", "int8")


def traceable_of(backend: Any) -> tuple[Callable[[Any], Any], Any]:
    """(a function of a symbolic batch, the object owning its variables) for a Keras or TF backend."""
    kind = type(backend).__name__
    if kind == "KerasBackend":
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ModelError(
                f"TFLite export traces the model with TensorFlow, and Keras runs on "
                f"{keras.backend.backend()} in this process: run with KERAS_BACKEND=tensorflow"
            )
        model = backend.model
        return (lambda x: model(x, training=False)), _owner(model)
    if kind == "TensorFlowBackend":
        if backend.traceable is None:
            raise ModelError(
                f"{backend.describe()} cannot be traced again for export (a tf.function with an "
                "output chosen by name): export a SavedModel with a serving signature instead"
            )
        return backend.traceable
    raise ModelError(
        f"TFLite export takes TensorFlow and Keras models; {backend.describe()} is not one. "
        "A PyTorch model exports to ONNX: `twoends export --onnx MODEL OUT.onnx` "
        "(there is no PyTorch -> TensorFlow path in twoends)"
    )


def fold(traceable: tuple[Callable[[Any], Any], Any]) -> tuple[tuple[Callable[[Any], Any], Any], Any]:
    """The traceable of the model without its BatchNormalization layers, and that model."""
    from twoends.backends.keras_fold import fold_batchnorm

    model = traceable[1]
    model = getattr(model, "keras_model", model)
    if not hasattr(model, "layers"):
        raise ModelError(f"fold_batchnorm folds Keras models; this source is a {type(model).__name__}")
    folded = fold_batchnorm(model)
    return ((lambda x: folded(x, training=False)), _owner(folded)), folded


def _owner(model: Any) -> Any:
    """What owns the variables, for the converter. A tf-keras model is a TensorFlow trackable; a Keras 3
    model is not one the converter reads (its outputs come out NaN): a tf.Module holding the
    tf.Variables under the Keras 3 variables is."""
    if type(model).__module__.split(".")[0] != "keras":
        return model
    owner = tf.Module()
    owner.weights = [getattr(w, "value", w) for w in model.weights]
    owner.keras_model = model  # for fold(): the model itself, not tracked by the converter's freezing
    return owner


def run(traceable: tuple[Callable[[Any], Any], Any], x: np.ndarray) -> np.ndarray:
    """The traced function on a NumPy batch (the float reference a folded model is checked against)."""
    out = traceable[0](tf.constant(x, tf.float32))
    return np.asarray(out)


def convert(
    traceable: tuple[Callable[[Any], Any], Any],
    input_shape: tuple[int, ...],
    *,
    quantize: str | None = None,
    representative: np.ndarray | None = None,
) -> bytes:
    """The .tflite bytes. ``input_shape``: one input without the batch axis (e.g. (32, 32, 3))."""
    fn, owner = traceable
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {QUANTIZE} (full-integer ends) or None (float), got {quantize!r}")
    if quantize is not None and (representative is None or len(representative) == 0):
        raise ConfigError(
            "full-integer export needs a representative set: a folder of your own images "
            "(--representative DIR), preprocessed as the model takes them"
        )
    spec = tf.TensorSpec([None, *input_shape], tf.float32, name="input")
    concrete = tf.function(fn, input_signature=[spec]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], owner)
    if quantize is not None:
        data = np.asarray(representative, dtype=np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in data)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, quantize)
    try:
        return converter.convert()
    except Exception as e:  # the converter raises ConverterError and others; all mean "cannot convert"
        raise ModelError(f"TensorFlow's TFLite converter could not convert the model: {e}") from e
