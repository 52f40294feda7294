"""Stable softmax / log-softmax for the calibration code, in float64 NumPy.

Kept in this one file on purpose: ``twoends.head.activations`` owns these
numerics for the whole package, and once its API settles this module becomes a
re-export of it. Calibration wants float64 throughout (NLL differences of 1e-6
decide a fitted temperature), so everything here computes and returns float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "softmax", "logsumexp"]


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(x))) along ``axis`` (kept as a size-1 axis), shifted by the max so exp never overflows."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) as ``x - logsumexp(x)``: never the log of a probability rounded to 0."""
    x = np.asarray(x, dtype=np.float64)
    return x - logsumexp(x, axis=axis)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
