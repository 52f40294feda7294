"""JAX backend: a Flax module with its variables, an nnx module, or any ``apply(params, x)``.

What is run, in inference mode:

- a ``flax.linen.Module`` with ``params=`` (its variables, ``{"params": ...,
  "batch_stats": ...}``; a bare params tree is wrapped as ``{"params": tree}``):
  ``module.apply(variables, x, deterministic=True)`` - or ``train=False`` /
  ``training=False`` - whichever keyword its ``__call__`` takes;
- a ``flax.nnx.Module``: put in evaluation mode once (``module.eval()``: Dropout
  deterministic, BatchNorm on its running averages), then split into graph and
  state; the state is a snapshot taken at wrap time;
- any callable: ``fn(params, x)`` when ``params=`` is given, else ``fn(x)``,
  with the same deterministic keywords when its signature has them.

The call is ``jax.jit``-compiled once per batch shape. ``forward`` returns a
``jax.Array`` on the model's device, and the head computes softmax, top-k,
entropy on it with JAX; only the finished results come to the host.

Flax convolutions take channels last, so the spec this backend bundles is the
default ImageSpec with ``layout="NHWC"``; the model's real preprocessing comes
from ``spec=``.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from twoends.backends.base import Backend, ModelInfo
from twoends.errors import ConfigError, InputError, ModelError
from twoends.options import RunOptions

__all__ = ["JaxBackend", "wrap_callable", "resolve_device", "inference_kwargs"]

# keyword -> the value that means "inference" (Flax's conventions, and the common hand-written ones)
_INFERENCE_KWARGS = {"deterministic": True, "train": False, "training": False, "is_training": False}


def resolve_device(device: str | None = "auto") -> Any:
    """A ``jax.Device`` for "auto", "cpu", "gpu", "cuda", "cuda:N", "gpu:N" or "tpu[:N]"."""
    key = "auto" if device is None else str(device).strip().lower()
    if key == "auto":
        return jax.devices()[0]
    kind, _, index = key.partition(":")
    platform = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "tpu": "tpu"}.get(kind)
    if platform is None or (index and not index.isdigit()):
        raise ConfigError(f"unknown device {device!r}: expected auto, cpu, cuda, cuda:N, gpu:N or tpu:N")
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    i = int(index or 0)
    if i >= len(devices):
        have = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise ConfigError(
            f"device {device!r} was asked for but JAX has {len(devices)} {platform} device(s) "
            f"here (platforms: {have}); use device='auto' or 'cpu'"
        )
    return devices[i]


def inference_kwargs(fn: Callable) -> dict[str, bool]:
    """The keywords of ``fn`` that switch off training behaviour, set to their inference values."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in _INFERENCE_KWARGS.items() if k in params}


def _extract(out: Any) -> Any:
    if isinstance(out, Mapping):
        if "logits" in out:
            return out["logits"]
        if len(out) == 1:
            return next(iter(out.values()))
        raise ModelError(
            f"the function returned a dict with keys {sorted(map(str, out))} and no 'logits'; return the logits array"
        )
    if isinstance(out, (tuple, list)) and out:
        return _extract(out[0])  # (logits, state) from linen apply with mutable collections, and the like
    if getattr(out, "logits", None) is not None:
        return out.logits
    return out


class JaxBackend(Backend):
    """Run a jitted JAX function ``fn(params, x)`` on one device; ``forward`` returns a ``jax.Array``."""

    def __init__(self, fn: Callable, params: Any, *, info: ModelInfo, device: Any) -> None:
        self._device = device
        self.device = f"{device.platform}:{device.id}" if device.platform != "cpu" else "cpu"
        self._params = jax.device_put(params, device) if params is not None else None
        self._fn = jax.jit(fn)
        self.info = info

    def forward(self, batch: Any) -> jax.Array:
        x = jax.device_put(batch if isinstance(batch, jax.Array) else np.asarray(batch), self._device)
        out = _extract(self._fn(self._params, x))
        if not hasattr(out, "shape") or out.ndim not in (1, 2):
            raise ModelError(
                f"{self.info.name} returned {type(out).__name__} of shape "
                f"{getattr(out, 'shape', None)}; expected logits [batch, classes]"
            )
        if self.info.num_outputs is None and out.ndim == 2:
            self.info = dataclasses.replace(self.info, num_outputs=int(out.shape[1]))
        return out

    def collate(self, inputs: Any) -> Any:
        """JAX arrays the user passed are stacked with JAX, where they are."""
        if any(isinstance(x, jax.Array) for x in inputs):
            first = tuple(inputs[0].shape)
            bad = next((i for i, x in enumerate(inputs) if tuple(x.shape) != first), None)
            if bad is not None:
                raise InputError(
                    f"inputs of one batch must share a shape; input 0 is {first}, input {bad} is "
                    f"{tuple(inputs[bad].shape)}: preprocess them alike, or pass them in separate calls"
                )
            return jnp.stack([jnp.asarray(x) for x in inputs])
        return super().collate(inputs)

    def describe(self) -> str:
        return f"JaxBackend({self.info.name}, device={self.device})"


def _linen(module: Any, params: Any) -> tuple[Callable, Any, list[str]]:
    if params is None:
        raise ConfigError(
            f"a flax.linen {type(module).__name__} needs its variables: twoends.wrap(module, params=variables, ...)"
        )
    notes = []
    if not (isinstance(params, Mapping) and "params" in params):
        params, _ = {"params": params}, notes.append("params= given as a bare tree: used as {'params': tree}")
    kwargs = inference_kwargs(type(module).__call__)
    notes.append(_said("module.apply(variables, x", kwargs))

    def fn(variables, x):
        return module.apply(variables, x, **kwargs)

    return fn, params, notes


def _nnx(module: Any, params: Any) -> tuple[Callable, Any, list[str]]:
    from flax import nnx

    if params is not None:
        raise ConfigError("an nnx module carries its own parameters: wrap(module) without params=")
    module.eval()  # Dropout deterministic, BatchNorm on running averages; the backend owns the module
    graphdef, state = nnx.split(module)

    def fn(state, x):
        return nnx.merge(graphdef, state)(x)

    return fn, state, ["nnx module put in evaluation mode (module.eval()); its state is a snapshot taken at wrap time"]


def _plain(fn_in: Callable, params: Any) -> tuple[Callable, Any, list[str]]:
    kwargs = inference_kwargs(fn_in)
    if params is None:

        def fn(_, x):
            return fn_in(x, **kwargs)

        return fn, None, [_said("fn(x", kwargs)]

    def fn(p, x):
        return fn_in(p, x, **kwargs)

    return fn, params, [_said("fn(params, x", kwargs)]


def _said(call: str, kwargs: dict) -> str:
    extra = "".join(f", {k}={v}" for k, v in kwargs.items())
    if kwargs:
        return f"run as {call}{extra})"
    return f"run as {call}): no deterministic/train keyword in its signature, so none is passed"


def wrap_callable(
    model: Any,
    *,
    params: Any = None,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str = "logits",
    run: RunOptions | None = None,
    device: str | None = None,
    name: str | None = None,
) -> JaxBackend:
    """The backend for a Flax module or a JAX function handed to ``twoends.wrap``."""
    from twoends.preprocess import ImageSpec

    roots = {c.__module__.split(".")[0] for c in type(model).__mro__}
    if "flax" in roots and _is_linen(model):
        fn, params, notes = _linen(model, params)
    elif "flax" in roots and _is_nnx(model):
        fn, params, notes = _nnx(model, params)
    elif callable(model):
        fn, params, notes = _plain(model, params)
    else:
        raise ModelError(
            f"a {type(model).__name__} is not callable: expected a Flax module or a function apply(params, x) -> logits"
        )
    if spec is None:
        spec = ImageSpec(layout="NHWC")
        notes.append(
            "spec: twoends' default preprocessing laid out NHWC (Flax convolutions are channels "
            "last); pass spec=... with the model's own"
        )
    info = ModelInfo(
        name=name or getattr(model, "__name__", None) or type(model).__name__,
        spec=spec,
        labels=labels,
        activation=activation,
        outputs=outputs,
        notes=tuple(notes),
    )
    run = RunOptions.of(run, device=device)
    run.require("a JAX model", {"device"})
    return JaxBackend(fn, params, info=info, device=resolve_device(run.device))


def _is_linen(model: Any) -> bool:
    from flax import linen

    return isinstance(model, linen.Module)


def _is_nnx(model: Any) -> bool:
    from flax import nnx

    return isinstance(model, nnx.Module)
