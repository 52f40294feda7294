"""Combining the members of an ensemble, class by class, aligned by name (not by position).

Each member's outputs come in its own class order; ``columns[i][j]`` is the
ensemble class of member i's output j (see ``twoends.ensemble.align_labels``).

* ``combine_probabilities``: the weighted mean of the members' probabilities
  (each after its own temperature). softmax members: a member that lacks a class
  gives it probability 0 (its mass is over its own classes), so the mean is still a
  distribution. sigmoid members: each class is its own yes/no, so a class is
  averaged over the members that have it. Returned as logits for the Head: log p
  (softmax(log p) == p), or log(p / (1 - p)) for sigmoid.
* ``combine_logits``: the weighted mean of the members' logits (each divided by its
  own temperature); the members must have the same classes, since a logit means
  nothing outside its own model's softmax.
"""

from __future__ import annotations

from typing import Sequence

from .activations import _quiet
from .arrays import namespace

__all__ = ["combine_logits", "combine_probabilities", "weighted_mean"]


@_quiet
def combine_probabilities(
    probabilities: Sequence,
    columns: Sequence[Sequence[int]],
    n_classes: int,
    weights: Sequence[float],
    *,
    activation: str = "softmax",
):
    """[B, n_classes] ensemble logits from each member's probabilities [B, C_i] (see the module docstring)."""
    xp, _ = namespace(probabilities[0])
    total, mass = 0.0, 0.0
    for p, cols, w in zip(probabilities, columns, weights):
        _, p = namespace(p)
        place = _placement(xp, cols, n_classes)
        total = total + w * (xp.astype(p, xp.float64) @ place)
        mass = mass + w * xp.sum(place, axis=0)
    if activation == "sigmoid":
        p = total / mass
        return xp.log(p) - xp.log1p(-p)
    return xp.log(total / sum(weights))


@_quiet
def combine_logits(logits: Sequence, columns: Sequence[Sequence[int]], n_classes: int, weights: Sequence[float]):
    """[B, n_classes] weighted mean of the members' logits [B, C_i] (same classes, any order)."""
    xp, _ = namespace(logits[0])
    total = 0.0
    for z, cols, w in zip(logits, columns, weights):
        _, z = namespace(z)
        source = [0] * n_classes  # the same classes: ensemble column k reads member output source[k]
        for j, k in enumerate(cols):
            source[k] = j
        # a gather, not a product with a 0/1 matrix: a masked class (-inf) times 0 would be NaN
        total = total + w * xp.take(xp.astype(z, xp.float64), xp.asarray(source, dtype=xp.int64), axis=1)
    return total / sum(weights)


def _placement(xp, columns, n_classes: int):
    """[C_i, n_classes] 0/1 matrix putting member output j in ensemble column columns[j].

    A matrix product instead of indexed assignment, which not every array library allows.
    Exact: each output row has a single 1, so every sum has one non-zero term.
    """
    cols = xp.asarray(list(columns), dtype=xp.int64)
    return xp.astype(cols[:, None] == xp.arange(n_classes, dtype=xp.int64)[None, :], xp.float64)


def weighted_mean(values: Sequence, weights: Sequence[float]):
    """Row-wise weighted mean of [B] arrays (e.g. the members' out-of-distribution scores)."""
    xp, first = namespace(values[0])
    total = xp.zeros(first.shape, dtype=xp.float64)
    for v, w in zip(values, weights):
        _, v = namespace(v)
        total = total + w * xp.astype(v, xp.float64)
    return total / sum(weights)
