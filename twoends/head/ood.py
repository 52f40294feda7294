"""Out-of-distribution scores: how unlike the training data an input looks, from its outputs alone.

A classifier asked about a texture or noise still answers with a class; its
outputs carry a signal that it is out of its depth. Every score here follows one
convention: **higher = more out-of-distribution**, so one threshold rule serves
all of them (``score > threshold`` -> "none of the above").

* ``"energy"`` (the default; Liu et al. 2020): ``-T * logsumexp(z / T)``. The
  logsumexp of the logits is large when some class fits the input well, in a way
  the softmax normalises away. For sigmoid (multi-label) heads the joint energy
  ``-T * sum_c softplus(z_c / T)`` (Wang et al. 2021): every class that fires
  lowers it. A one-logit binary model gets ``-T * softplus(z / T)``, which is the
  same thing, since its shown logits are ``[0, z]``.
* ``"max_logit"`` (Hendrycks et al. 2022): ``-max_c z_c``.
* ``"max_probability"`` (Hendrycks & Gimpel 2017): ``-max_c p_c``.

Energy and max-logit are computed on the model's own logits at T = 1 by default
(the calibration temperature does not move them, so a threshold fitted once stays
valid when the temperature changes); max-probability uses the probabilities as
shown. For a model that returns probabilities (its "logits" are log p), energy is
0 for every input and says nothing: ``default_method`` picks max-probability there.
"""

from __future__ import annotations

from .activations import _quiet, logsumexp
from .arrays import check_temperature, compute_dtype, namespace

__all__ = ["OOD_METHODS", "default_method", "describe_method", "ood_scores", "is_ood"]

OOD_METHODS = ("energy", "max_logit", "max_probability")


def default_method(outputs: str) -> str:
    """The score that means something for a model whose outputs are ``outputs`` (logits / probabilities)."""
    return "max_probability" if outputs == "probabilities" else "energy"


def describe_method(method: str, activation: str) -> str:
    """One line for ``describe()``: which score, and which way is out-of-distribution."""
    if method == "energy":
        formula = (
            "-sum_c softplus(z_c) (joint energy of the sigmoid outputs)"
            if activation == "sigmoid"
            else "-logsumexp(z) (energy, T = 1)"
        )
    elif method == "max_logit":
        formula = "-max(z) (maximum logit)"
    else:
        formula = "-max(p) (maximum probability, at the head's temperature)"
    return f"{method}: {formula} on the model's logits z; higher = less like the training data"


@_quiet
def ood_scores(
    logits, method: str = "energy", *, activation: str = "softmax", probabilities=None, temperature: float = 1.0
):
    """The out-of-distribution score of each row of ``logits`` [B, C] (higher = more out-of-distribution).

    ``activation``: "softmax" or "sigmoid" (joint energy). ``probabilities``: the
    rows' probabilities, needed only by ``"max_probability"``. ``temperature``: the
    T of the energy (default 1). Returns [B] in the input's array library.
    """
    if method not in OOD_METHODS:
        from ..errors import ConfigError

        raise ConfigError(f"expected an out-of-distribution score among {OOD_METHODS}, got {method!r}")
    if method == "max_probability":
        if probabilities is None:
            from ..errors import ConfigError

            raise ConfigError("the max_probability score needs the probabilities")
        xp, p = namespace(probabilities)
        return -xp.max(p, axis=-1)
    xp, x = namespace(logits)
    x, out_dtype = compute_dtype(xp, x)
    if method == "max_logit":
        return xp.astype(-xp.max(x, axis=-1), out_dtype)
    t = check_temperature(temperature)
    z = x if t == 1.0 else x / t
    if activation == "sigmoid":
        # softplus(z) = logaddexp(0, z): exact in both tails, never overflows
        energy = -t * xp.sum(xp.logaddexp(xp.zeros_like(z), z), axis=-1)
    else:
        energy = -t * logsumexp(z, axis=-1)
    return xp.astype(energy, out_dtype)


def is_ood(scores, threshold: float | None):
    """``score > threshold`` per row (None without a threshold); NaN scores are not flagged here."""
    if threshold is None:
        return None
    xp, s = namespace(scores)
    return s > threshold
