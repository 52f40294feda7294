"""Top-k classes with their probabilities, without a full softmax or a full sort.

For a softmax head, p_i = exp(x_i - logsumexp(x)). So the k best classes are
the k largest logits (partial selection, O(C) per row), and their
probabilities need only one number per row besides them: the logsumexp.
Nothing of size [B, C] is written beyond what logsumexp reads; the full
probability vector is never built. For a sigmoid head each probability depends
on its own logit only, so the top-k logits are all that is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .activations import _quiet, log_sigmoid, logsumexp
from .arrays import check_temperature, compute_dtype, namespace
from .kernels import _top_blocked, select_top

__all__ = ["TopK", "topk"]


@dataclass(frozen=True)
class TopK:
    """The k best classes per row, best first, in the input's own array library.

    ``k`` is the number actually returned: a request above the number of
    classes is clamped, and ``k`` says so.
    """

    indices: Any
    logits: Any
    probabilities: Any
    log_probabilities: Any
    k: int
    requested_k: int

    @property
    def clamped(self) -> bool:
        return self.k < self.requested_k


@_quiet
def topk(logits, k: int = 5, axis: int = -1, temperature: float = 1.0, activation: str = "softmax") -> TopK:
    """The ``k`` largest classes along ``axis``, with probabilities and log-probabilities.

    Results keep the input's library, device and dtype; indices are integers of
    that library. ``activation`` is "softmax" (classes compete) or "sigmoid"
    (each class on its own, multi-label).
    """
    t = check_temperature(temperature)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a whole number >= 1, got {k!r}")
    if activation not in ("softmax", "sigmoid"):
        raise ConfigError(f'activation must be "softmax" or "sigmoid", got {activation!r}')
    xp, x = namespace(logits)
    n = x.shape[axis]
    if n == 0:
        raise ConfigError("logits have no classes along the class axis (size 0)")
    kk = min(k, n)
    # long rows: one pass gives both the selection and the logsumexp (see kernels._top_blocked)
    fused = _top_blocked(x, kk, axis, t) if activation == "softmax" else None
    if fused is not None:
        vals, idx, lse = fused
    else:
        vals, idx = select_top(x, kk, axis)
    v32, out_dtype = compute_dtype(xp, vals)  # vals has x's dtype: same upcast, k columns only
    if t != 1.0:
        v32 = v32 / t
    if activation == "softmax":
        if fused is None:
            # logsumexp does the one full pass over the row; the selection above did the other
            lse = logsumexp(compute_dtype(xp, x)[0], axis=axis, keepdims=True, temperature=t)
        logp = v32 - lse
    else:
        logp = log_sigmoid(v32)
    return TopK(
        indices=idx,
        logits=vals,
        probabilities=xp.astype(xp.exp(logp), out_dtype),
        log_probabilities=xp.astype(logp, out_dtype),
        k=kk,
        requested_k=k,
    )
