"""Keras 3 backend: a ``keras.Model`` (in memory, or a .keras / .h5 file) on any Keras backend.

Keras picks its own backend (TensorFlow, JAX or PyTorch) from ``KERAS_BACKEND``
when it is first imported; this adapter works on whichever is in use and says
which in the notes.

- Inference mode: every batch goes through ``model.predict_on_batch``, which
  calls the model with ``training=False`` (Dropout off, BatchNorm on its moving
  statistics) without gradient tracking on every backend (under
  ``torch.no_grad`` on PyTorch) and returns NumPy.
- Outputs: a last layer that applies softmax or sigmoid (a ``Dense(...,
  activation="softmax")``, a ``Softmax`` layer, an ``Activation("softmax")``)
  means the outputs are probabilities: ``outputs="probabilities"``, said in the
  notes, so the head turns them back into logits instead of applying softmax
  twice. Any other last activation (linear, relu, ...) gives logits.
- Preprocessing: Keras models do not carry theirs; the input size and layout
  (channels last, Keras' default) come from the model's input shape, the rest
  must be given (``spec=``), as the notes say.

Files load with ``safe_mode=True``: a model file whose Lambda layers would run
pickled Python code is refused (rule 7: untrusted files stay data).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _pick_backend() -> str | None:
    """Keras defaults to TensorFlow and fails to import without it. When the backend was not chosen
    (no KERAS_BACKEND, keras not yet imported) and the one in keras.json - "tensorflow" in the file
    Keras writes on its first import - is not installed, use JAX, else PyTorch, and say so in the notes."""
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return None
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            configured = str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        configured = "tensorflow"
    if importlib.util.find_spec(configured) is not None:
        return None
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            os.environ["KERAS_BACKEND"] = name
            return name
    return None


_PICKED = _pick_backend()
if (os.environ.get("KERAS_BACKEND") or "tensorflow") == "tensorflow":
    from twoends.backends.tf_first import load_triton_first

    load_triton_first()  # Keras on TensorFlow imports it: Triton's library goes first (tf_first.py)

import keras  # noqa: E402  (after the backend is chosen)

from twoends.backends.base import Backend, ModelInfo
from twoends.backends.model_ends import final_activation, num_classes, outputs_from_activation, spec_from_input_shape
from twoends.errors import ConfigError, ModelError
from twoends.options import RunOptions

__all__ = ["KerasBackend", "from_path", "wrap_model", "info_from_model", "final_activation"]


def info_from_model(model: Any, *, name: str | None = None) -> ModelInfo:
    """What the model says about its ends: outputs kind, number of classes, input size and layout."""
    notes = [f"Keras {keras.__version__} on the {keras.backend.backend()} backend (KERAS_BACKEND)"]
    if _PICKED:
        notes.append(f"KERAS_BACKEND was not set and the configured backend is not installed: twoends chose {_PICKED}")
    outputs, activation, note = outputs_from_activation(final_activation(model))
    notes += [note] if note else []
    try:
        num_outputs = num_classes(model.output_shape)
    except (AttributeError, ValueError, TypeError):  # subclassed models have no static output shape
        num_outputs = None
    try:
        spec, note = spec_from_input_shape(model.input_shape)
    except (AttributeError, ValueError, TypeError):
        spec, note = None, None
    notes += [note] if note else []
    return ModelInfo(
        name=name or getattr(model, "name", None) or "keras_model",
        spec=spec,
        activation=activation,
        outputs=outputs,
        num_outputs=num_outputs,
        notes=tuple(notes),
    )


class KerasBackend(Backend):
    """Run a Keras model in inference mode. ``forward`` returns NumPy outputs [B, C]."""

    def __init__(self, model: Any, *, info: ModelInfo | None = None) -> None:
        if not isinstance(model, keras.Model):
            raise ModelError(f"KerasBackend needs a keras.Model, got {type(model).__name__}")
        self.model = model
        self.info = info if info is not None else info_from_model(model)
        self.device = "cpu" if not _accelerators() else "auto"
        dtype = getattr(model.inputs[0], "dtype", None) if getattr(model, "inputs", None) else None
        self._dtype = np.dtype(dtype) if dtype and np.dtype(dtype).kind in "fu" else np.dtype("float32")

    def forward(self, batch: Any) -> np.ndarray:
        x = np.asarray(batch)
        if x.dtype != self._dtype:
            x = x.astype(self._dtype)
        out = self.model.predict_on_batch(x)  # training=False, no gradients, NumPy out
        out = _first_output(out)
        if self.info.num_outputs is None and out.ndim == 2:
            self.info = dataclasses.replace(self.info, num_outputs=int(out.shape[1]))
        return out

    def describe(self) -> str:
        return f"KerasBackend({self.info.name}, {keras.backend.backend()} backend)"


def _first_output(out: Any) -> np.ndarray:
    if isinstance(out, dict):
        if "logits" in out:
            return np.asarray(out["logits"])
        if len(out) == 1:
            return np.asarray(next(iter(out.values())))
        raise ModelError(
            f"the model returned outputs {sorted(out)} and none is 'logits'; "
            "build a model with the one classification output"
        )
    if isinstance(out, (list, tuple)):
        return np.asarray(out[0])
    return np.asarray(out)


def _accelerators() -> bool:
    try:
        from keras import distribution

        return any(not d.lower().startswith("cpu") for d in distribution.list_devices())
    except Exception:  # backends differ in what they can list; a failure means "do not know"
        return False


def wrap_model(
    model: Any,
    *,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    run: RunOptions | None = None,
    device: str | None = None,
    name: str | None = None,
) -> KerasBackend:
    """The backend for an in-memory Keras model handed to ``twoends.wrap``.

    ``device`` is accepted for symmetry; Keras places the model itself
    (set the device with the backend's own tools, e.g. CUDA_VISIBLE_DEVICES).
    """
    run = RunOptions.of(run, device=device)
    run.require("a Keras model", {"device"})
    device = run.device
    if device not in (None, "auto", "cpu"):
        raise ConfigError(
            f"device={device!r}: Keras places models itself; leave device='auto' and choose the "
            "device with the Keras backend's own settings"
        )
    info = info_from_model(model, name=name)
    info = dataclasses.replace(
        info,
        spec=spec if spec is not None else info.spec,
        labels=labels if labels is not None else info.labels,
        activation=activation or info.activation,
        outputs=outputs or info.outputs,
    )
    return KerasBackend(model, info=info)


def from_path(path: str | Path, **options: Any) -> KerasBackend:
    """``load("keras:model.keras")``: a .keras or .h5 file, loaded without compiling and in safe mode."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"no Keras model at {path}: expected a .keras or .h5 file, as in 'keras:path/model.keras'")
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(
            f"{path.name}: expected a .keras or .h5 model file (a SavedModel folder needs "
            "keras.layers.TFSMLayer, which twoends does not load)"
        )
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # h5py, zip and deserialisation errors all mean the same to the user
        raise ModelError(f"Keras cannot load {path}: {e}") from e
    from twoends.backends import check_options

    check_options(wrap_model, options, "a Keras model")
    options.setdefault("name", path.stem)
    return wrap_model(model, **options)
