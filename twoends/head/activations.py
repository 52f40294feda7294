"""Numerically stable activations, written once for every array library.

Each function takes logits of any rank ([C], [B, C], [B, T, C], ...), works
along ``axis`` (default: the last, the class axis), keeps the input's library,
device and dtype, and never overflows: logits up to +-1e4 in float16, bfloat16,
float32 or float64 give finite, correct results.

Conventions kept on purpose:

* ``-inf`` is a masked class: probability 0, log-probability ``-inf``.
* A row whose entries are all ``-inf`` has no possible class: its softmax is NaN
  (0/0), which the Head reports as an error for that row rather than inventing
  an answer. NaN anywhere in a row makes the row NaN for the same reason.
* ``temperature`` divides the logits first (T > 0; T = 1 changes nothing).
* log_softmax and logsumexp are exact for a near-certain class: the max's own
  term exp(0) = 1 is added through ``log1p`` (see ``_log_sum_exp_shifted``).
  Calibration depends on it: log(1 + 1e-30) rounds to 0, so a near-certain
  row's NLL would be exactly 0 and a temperature search would sit on a flat
  plateau instead of a slope.

These are the package's only softmax / log-softmax / logsumexp: calibrate and
diagnose call them too (with float64 inputs, which stay float64).
"""

from __future__ import annotations

import functools

import numpy as np

from .arrays import check_temperature, compute_dtype, namespace

__all__ = ["softmax", "log_softmax", "sigmoid", "log_sigmoid", "logsumexp", "apply_temperature"]


def _quiet(fn):
    """Silence NumPy's 0/0 and log(0) warnings: such rows are reported by the Head, per row."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(*args, **kwargs)

    return wrapper


def apply_temperature(logits, temperature: float = 1.0):
    """``logits / temperature`` with the temperature checked (T > 0)."""
    t = check_temperature(temperature)
    xp, x = namespace(logits)
    return x if t == 1.0 else x / t


def _scaled(logits, temperature):
    """The namespace, the logits divided by T in the compute dtype, and the dtype to return in."""
    t = check_temperature(temperature)
    xp, x = namespace(logits)
    x, out_dtype = compute_dtype(xp, x)
    return xp, (x if t == 1.0 else x / t), out_dtype


def _shifted(x, xp, axis):
    """``x - max(x)`` along axis, with rows whose max is not finite shifted by 0.

    Subtracting the max is what makes exp() safe; an all -inf row would give
    -inf - -inf = NaN there, so such rows are left unshifted and come out as the
    0/0 they really are, and a +inf max is left to propagate as NaN too.
    """
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return x - m, m


def _log_sum_exp_shifted(z, xp, axis):
    """log(sum(exp(z))) along axis (kept), for z = x - max as ``_shifted`` returns it.

    In a row with a finite max, that max's term is exactly exp(0) = 1: the sum is
    1 + rest, and log1p(rest) keeps digits that log(1 + rest) rounds away. The
    terms where z == 0 are the max and its ties: all but one of them add exactly
    1 each, counted rather than exponentiated. A row with no z == 0 had no finite
    max (all -inf, +inf, NaN; ``_shifted`` left it unshifted) and keeps the plain
    log of the sum: -inf, +inf or NaN, as before.
    """
    e = xp.exp(z)
    plain = xp.log(xp.sum(e, axis=axis, keepdims=True))
    at_max = z == 0
    ties = xp.sum(xp.astype(at_max, z.dtype), axis=axis, keepdims=True) - 1
    rest = xp.sum(xp.where(at_max, xp.zeros_like(e), e), axis=axis, keepdims=True) + ties
    return xp.where(xp.any(at_max, axis=axis, keepdims=True), xp.log1p(rest), plain)


@_quiet
def softmax(logits, axis: int = -1, temperature: float = 1.0):
    """Probabilities that sum to 1 along ``axis``: exp(x - max) / sum(exp(x - max))."""
    xp, x, out_dtype = _scaled(logits, temperature)
    z, _ = _shifted(x, xp, axis)
    e = xp.exp(z)
    return xp.astype(e / xp.sum(e, axis=axis, keepdims=True), out_dtype)


@_quiet
def log_softmax(logits, axis: int = -1, temperature: float = 1.0):
    """log(softmax(x)) as ``(x - max) - log1p(rest)``: exact for the top class, never log(0)."""
    xp, x, out_dtype = _scaled(logits, temperature)
    z, _ = _shifted(x, xp, axis)
    return xp.astype(z - _log_sum_exp_shifted(z, xp, axis), out_dtype)


@_quiet
def logsumexp(logits, axis: int = -1, keepdims: bool = False, temperature: float = 1.0):
    """log(sum(exp(x))) along ``axis``; -inf for an all -inf row, like SciPy."""
    xp, x, out_dtype = _scaled(logits, temperature)
    z, m = _shifted(x, xp, axis)
    out = _log_sum_exp_shifted(z, xp, axis) + m
    if not keepdims:
        out = xp.squeeze(out, axis=axis)
    return xp.astype(out, out_dtype)


@_quiet
def sigmoid(logits, temperature: float = 1.0):
    """1 / (1 + exp(-x)) computed from exp(-|x|), which never overflows.

    The naive form overflows exp(-x) for x below about -88 in float32 (and -11
    in float16); both branches here only ever exponentiate a non-positive number.
    """
    xp, x, out_dtype = _scaled(logits, temperature)
    e = xp.exp(-xp.abs(x))
    out = xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return xp.astype(out, out_dtype)


@_quiet
def log_sigmoid(logits, temperature: float = 1.0):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), exact in the far tails."""
    xp, x, out_dtype = _scaled(logits, temperature)
    out = xp.minimum(x, xp.zeros_like(x)) - xp.log1p(xp.exp(-xp.abs(x)))
    return xp.astype(out, out_dtype)
