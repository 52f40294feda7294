"""Array-library plumbing for the head: one namespace per input, no conversions.

The numerics are written once against an array-API namespace (``xp``) obtained
from the input itself, so NumPy stays NumPy, a CUDA tensor stays on its GPU and
a JAX array stays in JAX. A framework is only ever touched when the user has
handed us one of its arrays, so it is already imported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_numpy_array, is_torch_array

from ..errors import ConfigError

__all__ = ["namespace", "array_api", "compute_dtype", "check_temperature", "to_numpy"]


class _NumPyNamespace:
    """NumPy's own namespace as the array API, for NumPy arrays.

    NumPy 2's main namespace is the array API for everything the head uses except four
    signatures, given here as array_api_compat gives them. array_api_compat's own NumPy
    namespace holds the same functions, but importing it reads every attribute of NumPy,
    which imports each lazily loaded submodule (f2py, testing, ma, polynomial): 40 ms of
    every one-photo run, for nothing.
    """

    __name__ = "numpy"

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
        kind: Any = "stable" if stable else None
        if not descending:
            return np.argsort(x, axis=axis, kind=kind)
        # reversed, sorted stably, reversed back: equal values keep their order, as a true descending sort
        res = np.flip(np.argsort(np.flip(x, axis=axis), axis=axis, kind=kind), axis=axis)
        return (x.shape[axis] - 1) - res

    @staticmethod
    def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
        return np.take_along_axis(x, indices, axis=axis)

    @staticmethod
    def astype(x: Any, dtype: Any, /, *, copy: bool = True) -> Any:
        return x.astype(dtype=dtype, copy=copy)

    @staticmethod
    def finfo(type_: Any, /) -> Any:
        try:
            return np.finfo(type_)
        except (ValueError, TypeError):
            return np.finfo(type_.dtype)


_NUMPY = _NumPyNamespace()
_NUMPY_IS_ARRAY_API = hasattr(np, "isdtype") and hasattr(np, "concat")  # NumPy >= 2.0


def array_api(x: Any) -> Any:
    """array_api_compat's ``array_namespace(x)``, with NumPy's own namespace for NumPy arrays."""
    if _NUMPY_IS_ARRAY_API and isinstance(x, (np.ndarray, np.generic)):
        return _NUMPY
    return array_namespace(x)


def namespace(x: Any):
    """The array-API namespace of ``x``; plain Python sequences become NumPy."""
    if isinstance(x, (list, tuple, int, float)):
        x = np.asarray(x, dtype=np.float64)
    elif type(x).__module__.startswith("tensorflow"):
        # the array API does not cover TensorFlow: its tensors become NumPy here, at the boundary
        # (bfloat16 as float32: NumPy has no bfloat16 of its own)
        x = np.asarray(x)
        x = x.astype(np.float32) if x.dtype.name == "bfloat16" else x
    try:
        return array_api(x), x
    except TypeError as exc:
        raise ConfigError(
            f"expected an array of logits (NumPy, PyTorch, JAX or any array-API library), "
            f"got {type(x).__name__}: pass np.asarray(values) if it is a plain container"
        ) from exc


def compute_dtype(xp, x):
    """Upcast 16-bit floats (and integers) to float32 for the arithmetic.

    exp/sum in float16 or bfloat16 loses most of its digits over thousands of
    classes; every framework's own softmax accumulates in float32 too. Results
    are cast back to the input dtype, so callers still get what they gave.
    Returns (array to compute on, dtype to return in).
    """
    dtype = x.dtype
    if not xp.isdtype(dtype, "real floating"):
        wanted = xp.float64 if is_numpy_array(x) else xp.float32
        return xp.astype(x, wanted), wanted
    if xp.finfo(dtype).bits < 32:
        return xp.astype(x, xp.float32), dtype
    return x, dtype


def check_temperature(temperature: Any) -> float:
    """A temperature is a finite number above zero; anything else is a clear error."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ConfigError(f"temperature must be a number > 0, got {temperature!r}") from None
    if not math.isfinite(t) or t <= 0:
        raise ConfigError(
            f"temperature must be finite and > 0 (1.0 leaves logits unchanged; > 1 softens, "
            f"< 1 sharpens), got {temperature!r}"
        )
    if not TEMPERATURE_RANGE[0] <= t <= TEMPERATURE_RANGE[1]:
        # logits / 1e-300 overflow to inf and the probabilities become NaN; no fitted or
        # useful temperature lies outside this range (twoends calibrate fits within 0.05-20)
        raise ConfigError(
            f"temperature must be between {TEMPERATURE_RANGE[0]:g} and {TEMPERATURE_RANGE[1]:g} (1.0 leaves logits "
            f"unchanged; > 1 softens, < 1 sharpens), got {temperature!r}"
        )
    return t


#: the temperatures a head accepts: logits up to 1e4 divided by the smallest stay finite in float32
TEMPERATURE_RANGE = (1e-4, 1e4)


def to_numpy(x) -> np.ndarray:
    """Bring a result to the host as NumPy, once per batch, at the edge of the head.

    16-bit floats become float32 (NumPy has no bfloat16, and JSON wants plain numbers).
    """
    if is_numpy_array(x):
        return x
    xp = array_api(x)
    if xp.isdtype(x.dtype, "real floating") and xp.finfo(x.dtype).bits < 32:
        x = xp.astype(x, xp.float32)
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
