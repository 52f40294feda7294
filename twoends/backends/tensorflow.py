"""TensorFlow backend: SavedModel directories, tf-keras (Keras 2) models and files, a ``tf.Module``
or a ``tf.function``.

What is read, and from where (explicit arguments always win):

- **SavedModel** (``load("tf:path/")``, or an object from ``tf.saved_model.load`` passed to
  ``wrap``): the serving signature (``serving_default``, or ``signature=NAME``) gives the input's
  name, shape and dtype, hence the input size, layout (NHWC / NCHW) and dtype of the spec; its
  outputs are named (the one called "logits" when there are several, else the only one, or
  ``output=NAME``). A signature is a traced graph: Keras exports it with ``training=False``, so
  Dropout and BatchNorm are in inference mode in it.
- **tf-keras models** (``tf_keras.Model``, ``load("tf:model.h5")``): batches run through
  ``model.predict_on_batch`` (``training=False``, no gradients); the last layer's activation, the
  input and output shapes are read as for Keras 3 (``model_ends``).
- **a tf.function or a tf.Module** whose ``__call__`` is one: its ``input_signature`` gives the
  input's shape and dtype (without one, the spec must say them); it is called with
  ``training=False`` when it takes a ``training`` argument.
- Whether the outputs are already probabilities: the op that produces the output, followed
  through Identity ops and into the called functions of the graph (Softmax, Sigmoid, LogSoftmax).

``forward`` returns NumPy: TensorFlow tensors stop at this boundary (the head's array API does not
cover TensorFlow). Importing this module imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from twoends.backends.tf_first import load_triton_first

load_triton_first()  # before TensorFlow: see tf_first.py

import tensorflow as tf  # noqa: E402

from twoends.backends.base import Backend, ModelInfo
from twoends.backends.model_ends import (
    class_outputs,
    final_activation,
    num_classes,
    outputs_from_activation,
    spec_from_input_shape,
)
from twoends.errors import ConfigError, InputError, ModelError
from twoends.options import RunOptions

__all__ = ["TensorFlowBackend", "build", "from_path", "wrap_model", "signature_final_op"]

# ops that pass values through unchanged, and ops that call a function of the graph's library
_PASS_THROUGH = {"Identity", "IdentityN", "Reshape", "Squeeze", "Cast", "StopGradient", "EnsureShape"}
_CALLS = {"StatefulPartitionedCall", "PartitionedCall"}
_DTYPES = {"float32": "float32", "float16": "float32", "float64": "float32", "uint8": "uint8"}


# --------------------------------------------------------------------------- reading the graph


def signature_final_op(fn: Any, index: int = 0) -> str | None:
    """The op type that produces output ``index`` of a concrete function, looking through
    Identity ops and into called functions; None when it cannot be read."""
    try:
        library = {f.signature.name: f for f in fn.graph.as_graph_def().library.function}
        tensor = fn.outputs[index]
        op, out = tensor.op, tensor.value_index
        for _ in range(32):
            if op.type in _PASS_THROUGH and op.inputs:
                tensor = op.inputs[0]
                op, out = tensor.op, tensor.value_index
            elif op.type in _CALLS:
                return _final_in_function(library, op.get_attr("f").name, out)
            else:
                return op.type
    except (AttributeError, IndexError, KeyError, ValueError, TypeError):  # graphs we cannot read: unknown
        return None
    return None


def _final_in_function(library: dict, name: str, index: int, depth: int = 0) -> str | None:
    fdef = library.get(name)
    if fdef is None or depth > 8:
        return None
    ref = fdef.ret[fdef.signature.output_arg[index].name]  # "node:output_arg:k"
    nodes = {n.name: n for n in fdef.node_def}
    for _ in range(64):
        node_name, _, rest = ref.partition(":")
        node = nodes.get(node_name)
        if node is None:  # an argument of the function: it ends in no op of its own
            return None
        if node.op in _PASS_THROUGH:
            ref = next(i for i in node.input if not i.startswith("^"))
        elif node.op in _CALLS:
            return _final_in_function(library, node.attr["f"].func.name, int(rest.rsplit(":", 1)[-1]), depth + 1)
        else:
            return node.op
    return None


# --------------------------------------------------------------------------- backend


class TensorFlowBackend(Backend):
    """Run a TensorFlow callable in inference mode. ``forward`` returns NumPy outputs [B, C]."""

    def __init__(
        self,
        call: Callable[[Any], Any],
        *,
        info: ModelInfo,
        input_shape: Sequence[Any] | None,
        input_dtype: str,
        output: str | None = None,
        device: str = "cpu",
        tf_device: str | None = None,
        what: str = "model",
        traceable: tuple[Callable[[Any], Any], Any] | None = None,
    ) -> None:
        self._call = call
        # (a function of a symbolic tensor giving the chosen output, the object owning the variables):
        # what a TFLite export traces; None where the model cannot be traced again
        self.traceable = traceable
        self.info = info
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.input_dtype = np.dtype(input_dtype)
        self.output = output
        self.device = device
        self._tf_device = tf_device
        self._what = what

    def forward(self, batch: Any) -> np.ndarray:
        x = self._check(np.asarray(batch))
        if self._tf_device:
            with tf.device(self._tf_device):
                out = self._call(x)
        else:
            out = self._call(x)
        out, self.info = class_outputs(self.info, _pick(out, self.output, self.info.name))
        return out

    def describe(self) -> str:
        return f"TensorFlowBackend({self.info.name}, {self._what}, TensorFlow {tf.__version__}, device={self.device})"

    def _check(self, x: np.ndarray) -> np.ndarray:
        want = self.input_shape
        if want is not None and (
            x.ndim != len(want) or any(isinstance(w, int) and w != g for w, g in zip(want[1:], x.shape[1:]))
        ):
            shown = (
                "[" + ", ".join("batch" if i == 0 else "?" if w is None else str(w) for i, w in enumerate(want)) + "]"
            )
            raise InputError(
                f"{self.info.name} takes inputs of shape {shown}, got {list(x.shape)}: set the spec's "
                "layout and input_size to match, or pass the model's own spec"
            )
        if x.dtype == self.input_dtype:
            return x
        if self.input_dtype.kind == "f" and x.dtype.kind in "fu":
            return x.astype(self.input_dtype)  # float64 -> float32, or raw 0..255 pixels the spec asked for
        raise InputError(
            f"{self.info.name} takes {self.input_dtype.name} inputs, got {x.dtype.name}: "
            f"set spec={{'dtype': '{self.input_dtype.name}'}}"
        )


def _pick(out: Any, wanted: str | None, name: str) -> np.ndarray:
    if isinstance(out, dict):
        names = sorted(out)
        key = wanted if wanted is not None else "logits" if "logits" in out else names[0] if len(out) == 1 else None
        if key not in out:
            asked = f"output={wanted!r} is not one of" if wanted is not None else "none is 'logits' among"
            raise ModelError(f"{name}: {asked} its outputs {names}; pass output=NAME to choose one")
        out = out[key]
    elif isinstance(out, (list, tuple)):
        out = out[0]
    return np.asarray(out)


def _device(device: str | None) -> tuple[str, str | None]:
    """(the device as a plain string, the TensorFlow device to pin to or None to let TF place it)."""
    gpus = tf.config.list_physical_devices("GPU")
    key = "auto" if device is None else str(device).strip().lower()
    if key == "auto":
        return ("cuda:0" if gpus else "cpu"), None
    if key == "cpu":
        return "cpu", "/CPU:0"
    if key.startswith("cuda"):
        _, _, index = key.partition(":")
        i = int(index) if index.isdigit() else 0 if not index else -1
        if 0 <= i < len(gpus):
            return f"cuda:{i}", f"/GPU:{i}"
        raise ConfigError(
            f"device {device!r} was asked for but TensorFlow sees {len(gpus)} GPU(s) "
            "(tensorflow-cpu has none); use device='cpu' or 'auto'"
        )
    raise ConfigError(f"unknown device {device!r} for TensorFlow: expected auto, cpu, cuda or cuda:N")


# --------------------------------------------------------------------------- builders


def _apply(
    info: ModelInfo, *, spec: Any, labels: Any, activation: str | None, outputs: str | None, name: str | None
) -> ModelInfo:
    """Explicit arguments over what the model said."""
    return dataclasses.replace(
        info,
        name=name or info.name,
        spec=spec if spec is not None else info.spec,
        labels=labels if labels is not None else info.labels,
        activation=activation or info.activation,
        outputs=outputs or info.outputs,
    )


def _graph_info(
    name: str, shape: Sequence[Any] | None, dtype: str, final_op: str | None, where: str
) -> tuple[ModelInfo, str]:
    """ModelInfo from an input signature and the graph's last op; (info, the spec's dtype)."""
    notes = [f"TensorFlow {tf.__version__}; {where}"]
    spec_dtype = _DTYPES.get(dtype)
    if spec_dtype is None:
        raise ModelError(f"{name}: the input is {dtype}; expected a float or uint8 image tensor")
    spec, note = spec_from_input_shape(shape or (), dtype=spec_dtype)
    notes += [note] if note else []
    outputs, activation, note = outputs_from_activation(final_op, where="the graph's last op")
    notes += [note] if note else []
    if final_op is None:
        notes.append(
            "the graph's last op was not read: its outputs are taken as logits; pass "
            "outputs='probabilities' if they are not"
        )
    return ModelInfo(name=name, spec=spec, activation=activation, outputs=outputs, notes=tuple(notes)), spec_dtype


def _signature(obj: Any, signature: str | None, name: str) -> Any:
    sigs = getattr(obj, "signatures", None) or {}
    key = signature or ("serving_default" if "serving_default" in sigs else next(iter(sigs), None))
    if key not in sigs:
        raise ModelError(
            f"{name}: no signature {key!r}; the SavedModel has {sorted(sigs) or 'none'} "
            "(export it with a serving signature, or pass signature=NAME)"
        )
    return key, sigs[key]


def _from_signature(obj: Any, *, name: str, signature: str | None, output: str | None, **options: Any):
    key, fn = _signature(obj, signature, name)
    args, kwargs = fn.structured_input_signature
    specs = list(args) + list(kwargs.values())
    if len(specs) != 1:
        raise ModelError(
            f"{name}: the signature {key!r} takes {len(specs)} inputs "
            f"{[(getattr(s, 'name', '?'), tuple(s.shape)) for s in specs]}; twoends runs image "
            "classifiers with one input: export a signature that takes one image batch"
        )
    input_name, spec = (next(iter(kwargs)), kwargs[next(iter(kwargs))]) if kwargs else (None, args[0])
    out_names = sorted(fn.structured_outputs) if isinstance(fn.structured_outputs, dict) else None
    chosen = (
        output
        if output is not None
        else (
            "logits"
            if out_names and "logits" in out_names
            else out_names[0]
            if out_names and len(out_names) == 1
            else None
        )
    )
    if out_names is not None and chosen not in out_names:
        raise ModelError(f"{name}: the signature {key!r} has outputs {out_names}; pass output=NAME to choose one")
    index = out_names.index(chosen) if out_names else 0
    shape = tuple(spec.shape.as_list())
    where = (
        f"the SavedModel signature {key!r}: input {input_name!r} {list(shape)} {spec.dtype.name}, "
        f"output {chosen!r} (a graph traced for inference: training=False)"
    )
    info, dtype = _graph_info(name, shape, spec.dtype.name, signature_final_op(fn, index), where)
    info = dataclasses.replace(
        info, num_outputs=num_classes(tuple(fn.structured_outputs[chosen].shape.as_list())) if out_names else None
    )
    call = (lambda x: fn(**{input_name: tf.constant(x)})) if input_name else (lambda x: fn(tf.constant(x)))
    traced = (lambda x: fn(**{input_name: x})) if input_name else fn
    traceable = ((lambda x: traced(x)[chosen]) if out_names else traced, obj)
    return _build(
        call, info, shape, spec.dtype.name, chosen, what=f"SavedModel signature {key!r}", traceable=traceable, **options
    )


def _from_function(fn: Any, *, name: str, output: str | None, **options: Any):
    sig = getattr(fn, "input_signature", None)
    python = getattr(fn, "python_function", fn)
    try:
        param = inspect.signature(python).parameters.get("training")
    except (TypeError, ValueError):
        param = None
    takes_training = param is not None
    if param is not None and sig is not None:
        # an input_signature freezes Python arguments at their defaults: training can only be its default
        if param.default is not False:
            raise ModelError(
                f"{name}: the function's training argument defaults to {param.default!r} and its "
                "input_signature freezes it there (TensorFlow traces Python arguments as constants), "
                "so it cannot run with training=False: make training=False its default, or drop "
                "the input_signature"
            )
        takes_training = False  # its default, False, is what runs
    if sig is not None and len(tf.nest.flatten(sig)) != 1:
        raise ModelError(
            f"{name}: the function's input_signature has {len(tf.nest.flatten(sig))} tensors; "
            "twoends runs image classifiers with one input"
        )
    spec = tf.nest.flatten(sig)[0] if sig is not None else None
    final = None
    if spec is not None:
        try:
            concrete = fn.get_concrete_function(spec)
            final = signature_final_op(concrete, 0)
        except (TypeError, ValueError):
            final = None
    shape = tuple(spec.shape.as_list()) if spec is not None else None
    dtype = spec.dtype.name if spec is not None else "float32"
    where = (
        f"input_signature {list(shape)} {dtype}"
        if spec is not None
        else "no input_signature: the input's shape and dtype come from the spec"
    )
    where += "; called with training=False" if param is not None else ""
    info, _ = _graph_info(name, shape, dtype, final, where)
    if spec is None:
        info = dataclasses.replace(
            info,
            notes=info.notes[:1]
            + ("the function has no input_signature: its outputs are taken as logits unless outputs=... says",),
        )
    kw = {"training": False} if takes_training else {}
    return _build(
        lambda x: fn(tf.constant(x), **kw),
        info,
        shape,
        dtype,
        output,
        what="tf.function",
        traceable=None if output else (lambda x: fn(x, **kw), fn),
        **options,
    )


def _from_tf_keras(model: Any, *, name: str, output: str | None, **options: Any):
    import tf_keras

    notes = [
        f"tf-keras {tf_keras.__version__} (Keras 2) on TensorFlow {tf.__version__}: batches run through "
        "model.predict_on_batch (training=False, no gradients)"
    ]
    outputs, activation, note = outputs_from_activation(final_activation(model))
    notes += [note] if note else []
    spec, note = spec_from_input_shape(model.input_shape)
    notes += [note] if note else []
    info = ModelInfo(
        name=name,
        spec=spec,
        activation=activation,
        outputs=outputs,
        num_outputs=num_classes(model.output_shape),
        notes=tuple(notes),
    )
    dtype = model.inputs[0].dtype.name if getattr(model, "inputs", None) else "float32"
    return _build(
        model.predict_on_batch,
        info,
        model.input_shape,
        dtype,
        output,
        what="tf-keras model",
        traceable=None if output else (lambda x: model(x, training=False), model),
        **options,
    )


def _build(
    call,
    info,
    shape,
    dtype,
    output,
    *,
    what,
    traceable=None,
    spec=None,
    labels=None,
    activation=None,
    outputs=None,
    run=None,
    display=None,
):
    run = RunOptions.of(run)
    run.require("a TensorFlow model", {"device"})
    dev, tf_device = _device(run.device)
    info = _apply(info, spec=spec, labels=labels, activation=activation, outputs=outputs, name=display)
    shape = None if shape is None else tuple(d if isinstance(d, int) else None for d in shape)
    return TensorFlowBackend(
        call,
        info=info,
        input_shape=shape,
        input_dtype=_DTYPES.get(dtype, dtype),
        output=output,
        device=dev,
        tf_device=tf_device,
        what=what,
        traceable=traceable,
    )


def wrap_model(
    model: Any,
    *,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    output: str | None = None,
    signature: str | None = None,
    run: RunOptions | None = None,
    device: str | None = None,
    name: str | None = None,
) -> TensorFlowBackend:
    """The backend for an in-memory TensorFlow model handed to ``twoends.wrap``: a tf-keras model,
    a loaded SavedModel, a ``tf.Module`` whose ``__call__`` is a ``tf.function``, or a ``tf.function``.
    ``run``: only its device is used (TensorFlow places the model; "cpu" or "cuda:N" pin it)."""
    options = dict(
        spec=spec,
        labels=labels,
        activation=activation,
        outputs=outputs,
        run=RunOptions.of(run, device=device),
        display=name,
    )
    roots = {c.__module__.split(".")[0] for c in type(model).__mro__}
    label = name or getattr(model, "name", None) or type(model).__name__
    if "tf_keras" in roots:
        return _from_tf_keras(model, name=label, output=output, **options)
    if getattr(model, "signatures", None):
        return _from_signature(model, name=label, signature=signature, output=output, **options)
    fn = model if hasattr(model, "get_concrete_function") else getattr(model, "__call__", None)  # noqa: B004
    if fn is None or not hasattr(fn, "get_concrete_function") and not isinstance(model, tf.Module):
        raise ModelError(
            f"twoends cannot run a {type(model).__name__}: expected a SavedModel, a tf-keras model, "
            "a tf.Module whose __call__ is a tf.function, or a tf.function"
        )
    return _from_function(fn, name=label, output=output, **options)


def from_path(
    path: str | Path,
    *,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    output: str | None = None,
    signature: str | None = None,
    run: RunOptions | None = None,
    device: str | None = None,
    name: str | None = None,
) -> TensorFlowBackend:
    """``load("tf:path/")``: a SavedModel directory, or a tf-keras (Keras 2) ``.h5`` file."""
    path = Path(path).expanduser()
    options = dict(
        spec=spec,
        labels=labels,
        activation=activation,
        outputs=outputs,
        output=output,
        run=run,
        device=device,
        name=name or path.stem or path.name,
    )
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ModelError(
                f"{path} is a folder without saved_model.pb: expected a SavedModel directory "
                "(tf.saved_model.save or model.export write one)"
            )
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:  # TensorFlow raises many types for broken SavedModels
            raise ModelError(f"TensorFlow cannot load the SavedModel {path}: {e}") from e
        return wrap_model(loaded, signature=signature, **options)
    if path.suffix in (".h5", ".hdf5") and path.is_file():
        try:
            import tf_keras
        except ImportError:
            raise ModelError(
                f"{path.name} is a Keras 2 file: 'tf:' loads it with tf-keras, which is not installed; "
                f"pip install tf-keras, or load it with Keras 3: 'keras:{path}'"
            ) from None
        _refuse_lambda_layers(path)
        try:
            model = tf_keras.models.load_model(path, compile=False)
        except Exception as e:  # h5py and deserialisation errors all mean the same to the user
            raise ModelError(f"tf-keras cannot load {path}: {e}") from e
        return wrap_model(model, **options)
    if not path.exists():
        raise ModelError(
            f"no TensorFlow model at {path}: expected a SavedModel directory or a .h5 file, "
            "as in 'tf:path/to/saved_model/'"
        )
    raise ModelError(
        f"{path.name}: expected a SavedModel directory or a tf-keras .h5 file "
        "(a .keras file loads with 'keras:', a .tflite file with 'tflite:')"
    )


def _refuse_lambda_layers(path: Path) -> None:
    """tf-keras runs the Python bytecode a .h5 file stores for its Lambda layers (its safe_mode covers only
    .keras files): such a file is refused before it is loaded (rule 7: untrusted files stay data)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
    except OSError as e:
        raise ModelError(f"tf-keras cannot load {path}: not an HDF5 file ({e})") from e
    text = config.decode("utf-8", "replace") if isinstance(config, bytes) else str(config or "")
    if '"class_name": "Lambda"' in text:
        raise ModelError(
            f"{path.name} has Lambda layers, whose Python code tf-keras would run when loading it; "
            "twoends does not load them: rebuild the model without Lambda layers, or load it "
            "yourself if you trust the file and pass the model to twoends.wrap"
        )


def build(rest: str, **options: Any) -> TensorFlowBackend:
    """The ``tf:`` prefix: ``load("tf:path/to/saved_model/", ...)``."""
    from twoends.backends import check_options

    check_options(from_path, options, "a TensorFlow model")
    return from_path(rest, **options)
