"""Array-library plumbing for the head: one namespace per input, no conversions.

The numerics are written once against an array-API namespace (``xp``) obtained
from the input itself, so NumPy stays NumPy, a CUDA tensor stays on its GPU and
a JAX array stays in JAX. A framework is only ever touched when the user has
handed us one of its arrays, so it is already imported.

The array API has no top-k, so partial selection is the one thing done per
library, einops-style: one small function per library, found by the array's type.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import (
    array_namespace,
    is_jax_array,
    is_numpy_array,
    is_torch_array,
)

from ..errors import ConfigError

__all__ = ["namespace", "compute_dtype", "check_temperature", "select_top", "to_numpy"]


def namespace(x: Any):
    """The array-API namespace of ``x``; plain Python sequences become NumPy."""
    if isinstance(x, (list, tuple, int, float)):
        x = np.asarray(x, dtype=np.float64)
    try:
        return array_namespace(x), x
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
    return t


def select_top(x, k: int, axis: int = -1):
    """The k largest values along ``axis`` and their indices, sorted descending.

    Partial selection: O(n) per row plus a sort of only k items. ``k`` must
    already be clamped to the axis length.
    """
    for matches, fn in _SELECTORS:
        if matches(x):
            return fn(x, k, axis)
    return _select_generic(x, k, axis)


def _select_numpy(x, k, axis):
    n = x.shape[axis]
    if k < n:
        # argpartition on the negated values puts the k largest first; only those k get sorted
        part = np.argpartition(-x, k - 1, axis=axis)
        idx = np.take(part, np.arange(k), axis=axis)
    else:
        idx = np.broadcast_to(np.arange(n).reshape([-1 if a == axis % x.ndim else 1 for a in range(x.ndim)]), x.shape)
    vals = np.take_along_axis(x, idx, axis=axis)
    order = np.argsort(-vals, axis=axis, kind="stable")
    return np.take_along_axis(vals, order, axis=axis), np.take_along_axis(idx, order, axis=axis)


def _select_torch(x, k, axis):
    vals, idx = x.topk(k, dim=axis, largest=True, sorted=True)
    return vals, idx


def _select_jax(x, k, axis):
    import jax  # the user handed us a JAX array, so JAX is already imported

    moved = jax.numpy.moveaxis(x, axis, -1)
    vals, idx = jax.lax.top_k(moved, k)
    return jax.numpy.moveaxis(vals, -1, axis), jax.numpy.moveaxis(idx, -1, axis)


def _select_generic(x, k, axis):
    # any other array-API library: a full stable sort is the portable fallback
    xp = array_namespace(x)
    idx = xp.argsort(x, axis=axis, descending=True, stable=True)
    idx = xp.take(idx, xp.arange(k), axis=axis)
    return xp.take_along_axis(x, idx, axis=axis), idx


_SELECTORS = ((is_numpy_array, _select_numpy), (is_torch_array, _select_torch), (is_jax_array, _select_jax))


def to_numpy(x) -> np.ndarray:
    """Bring a result to the host as NumPy, once per batch, at the edge of the head.

    16-bit floats become float32 (NumPy has no bfloat16, and JSON wants plain numbers).
    """
    if is_numpy_array(x):
        return x
    xp = array_namespace(x)
    if xp.isdtype(x.dtype, "real floating") and xp.finfo(x.dtype).bits < 32:
        x = xp.astype(x, xp.float32)
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
