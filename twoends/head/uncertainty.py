"""How unsure a prediction is: entropy, margin, max probability.

All take probabilities (the output of softmax or sigmoid), along ``axis``,
in the input's own array library, as SciPy's ``entropy`` does. Entropy is in
nats (natural log); divide by log(C) for a 0..1 scale.
"""

from __future__ import annotations

from .activations import _quiet
from .arrays import compute_dtype, namespace
from .kernels import select_top

__all__ = ["entropy", "binary_entropy", "margin", "max_probability"]


def _plogp(xp, p):
    # 0 * log 0 = 0 by continuity; masked (-inf logit) classes have p == 0 exactly
    safe = xp.where(p > 0, p, xp.ones_like(p))
    return xp.where(p > 0, p * xp.log(safe), xp.zeros_like(p))


@_quiet
def entropy(probabilities, axis: int = -1):
    """Shannon entropy -sum(p log p) of a distribution (softmax output), in nats."""
    xp, p = namespace(probabilities)
    p, out_dtype = compute_dtype(xp, p)
    return xp.astype(-xp.sum(_plogp(xp, p), axis=axis), out_dtype)


@_quiet
def binary_entropy(probabilities, axis: int = -1):
    """Sum over classes of each class's own yes/no entropy (sigmoid, multi-label output)."""
    xp, p = namespace(probabilities)
    p, out_dtype = compute_dtype(xp, p)
    per_class = -(_plogp(xp, p) + _plogp(xp, 1.0 - p))
    return xp.astype(xp.sum(per_class, axis=axis), out_dtype)


def margin(probabilities, axis: int = -1):
    """Top-1 minus top-2 probability; 1.0 for a single class (nothing to be torn between)."""
    xp, p = namespace(probabilities)
    if p.shape[axis] < 2:
        return xp.squeeze(xp.ones_like(p), axis=axis)
    vals, _ = select_top(p, 2, axis)
    lead = (slice(None),) * (axis % p.ndim)  # index by slicing: no index array to put on a device
    return vals[lead + (0,)] - vals[lead + (1,)]


def max_probability(probabilities, axis: int = -1):
    """The probability of the top class (the model's confidence)."""
    xp, p = namespace(probabilities)
    return xp.max(p, axis=axis)
