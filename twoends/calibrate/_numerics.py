"""Stable softmax / log-softmax for the calibration code, in float64 NumPy.

Kept in this one file on purpose: ``twoends.head.activations`` owns these
numerics for the whole package, and once its API settles this module can
re-export it. Two things matter more here than in the head: everything is
float64 (NLL differences of 1e-6 decide a fitted temperature), and the
log-probability of a near-certain class stays exact (see ``_shift``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "softmax", "logsumexp"]


def _shift(x: np.ndarray, axis: int):
    """(x - max, log1p(sum of the other exp terms)), both with the class axis kept.

    The max's own term exp(0) is exactly 1, so it is left out of the sum and
    added through ``log1p``. Without that, log(1 + 1e-30) rounds to 0: a
    near-certain row's NLL becomes exactly 0 and a temperature search sits on
    a flat plateau instead of a slope.
    """
    x = np.asarray(x, dtype=np.float64)
    i = np.expand_dims(np.argmax(x, axis=axis), axis)
    m = np.take_along_axis(x, i, axis=axis)
    z = x - m
    e = np.exp(z)
    np.put_along_axis(e, i, 0.0, axis=axis)
    return z, m, np.log1p(np.sum(e, axis=axis, keepdims=True))


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(x))) along ``axis``, kept as a size-1 axis; exp never overflows."""
    _, m, rest = _shift(x, axis)
    return m + rest


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) as ``(x - max) - log1p(rest)``: exact for the top class, never log(0)."""
    z, _, rest = _shift(x, axis)
    return z - rest


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
