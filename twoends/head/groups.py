"""The probability of a group of classes ("is it a cat?"), from the class probabilities or logits.

* softmax (one class per input): the classes are mutually exclusive events, so a
  group's probability is the **sum** of its classes' probabilities.
* sigmoid (multi-label): each class is its own yes/no; "some class of the group is
  on" is ``1 - prod_c (1 - p_c)`` **if the classes are independent given the input**
  - an assumption, stated wherever these numbers are shown. It is computed as
  ``-expm1(sum_c log_sigmoid(-z_c))``, exact even when every ``p_c`` is tiny or near 1.
"""

from __future__ import annotations

from typing import Sequence

from .activations import _quiet, log_sigmoid
from .arrays import namespace

__all__ = ["group_probabilities", "SIGMOID_RULE", "SOFTMAX_RULE"]

SOFTMAX_RULE = "sum of the classes' probabilities (softmax: the classes exclude each other)"
SIGMOID_RULE = (
    "1 - prod(1 - p) over the group's classes: the probability that any of them is present, "
    "assuming the classes are independent given the input"
)


@_quiet
def group_probabilities(
    members: Sequence[Sequence[int]], *, probabilities=None, logits=None, activation: str = "softmax"
):
    """[B, G] group probabilities for groups of class indices ``members``.

    softmax: needs ``probabilities`` [B, C]. sigmoid: needs ``logits`` [B, C]
    (already divided by the temperature). Stays in the input's array library.
    """
    if activation == "sigmoid":
        xp, z = namespace(logits)
        log_off = log_sigmoid(-z)  # log(1 - p_c), never log(0) of a rounded 1 - p
        cols = [-xp.expm1(xp.sum(xp.take(log_off, _idx(xp, m, z), axis=1), axis=1)) for m in members]
    else:
        xp, p = namespace(probabilities)
        cols = [xp.sum(xp.take(p, _idx(xp, m, p), axis=1), axis=1) for m in members]
    return xp.stack(cols, axis=1)


def _idx(xp, members, like):
    # an index array on the same device as the data (a CUDA tensor is indexed by a CUDA tensor)
    device = getattr(like, "device", None)
    try:
        return xp.asarray(list(members), dtype=xp.int64, device=device)
    except TypeError:
        return xp.asarray(list(members), dtype=xp.int64)
