"""Split conformal prediction sets for single-label classifiers.

The guarantee: fit on n held-out (calibration) samples, then for a new sample
that is exchangeable with them (drawn from the same distribution, e.g. an
i.i.d. split of the same data), the prediction set contains the true label
with probability at least 1 - alpha:

    P(y_test in C(x_test)) >= 1 - alpha,

marginally, i.e. on average over calibration sets and test samples - not for
every input or every class, and not under distribution shift. With continuous
scores (or ``randomized=True``) coverage is also at most 1 - alpha + 1/(n + 1).
The model need not be calibrated for this to hold; better probabilities give
smaller sets.

How: a score s(x, y) says how unusual label y is for x (larger = stranger).
``qhat`` is the k-th smallest calibration score with k = ceil((n + 1)(1 - alpha)),
i.e. the empirical quantile at level k / n (NumPy ``method="inverted_cdf"``),
and the set is {y : s(x, y) <= qhat}. (The gentle introduction's code calls
``np.quantile(..., method="higher")`` at that level, which for k < n picks
the (k+1)-th smallest score: still valid, one order statistic more
conservative than the theorem needs.) Scores, with pi the probabilities sorted in
decreasing order (ties towards the lower class index) and o the 1-based rank
of y in that order:

* ``"lac"`` (least ambiguous set-valued classifier): s = 1 - p_y.
* ``"aps"`` (adaptive prediction sets): s = pi_1 + ... + pi_(o-1) + u * pi_o.
* ``"raps"`` (regularised APS): the APS score + lam * max(0, o - k_reg), which
  discourages long tails of unlikely classes.

``u`` is 1 by default (``randomized=False``): the mass up to and including y,
as in Angelopoulos & Bates' "gentle introduction"; sets are then a
deterministic function of the probabilities, and slightly larger than needed.
With ``randomized=True``, u ~ Uniform(0, 1) is drawn once per sample (Romano et
al. 2020; Angelopoulos et al. 2021), which makes coverage exact rather than
conservative at the price of sets that change with the random draw.

A set can come out empty (e.g. APS when the top class alone has more mass
than ``qhat``). ``prediction_sets`` therefore adds the top-1 class by default
(``allow_empty=False``): adding labels can only raise coverage, so the
guarantee still holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import CalibrationError, ConfigError
from . import _checks

__all__ = [
    "ConformalThreshold",
    "conformal_scores",
    "fit_conformal",
    "prediction_sets",
    "set_members",
    "quantile_rank",
]

METHODS = ("lac", "aps", "raps")
RAPS_DEFAULTS = {"lam": 0.01, "k_reg": 5}


@dataclass(frozen=True)
class ConformalThreshold:
    """A fitted split-conformal threshold; JSON-ready through ``to_dict`` / ``from_dict``.

    ``params`` holds ``randomized`` and, for RAPS, ``lam`` and ``k_reg``.
    """

    method: str
    alpha: float
    qhat: float
    n: int
    n_classes: int
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "alpha": self.alpha,
            "qhat": self.qhat,
            "n": self.n,
            "n_classes": self.n_classes,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ConformalThreshold":
        keys = ("method", "alpha", "qhat", "n", "n_classes", "params")
        if not isinstance(d, dict) or any(k not in d for k in keys):
            raise CalibrationError(f"expected a dict with keys {keys} (from to_dict()), got {d!r}")
        method = _checks.check_choice(d["method"], "method", METHODS)
        params = _check_params(method, **d["params"])
        return cls(method, float(d["alpha"]), float(d["qhat"]), int(d["n"]), int(d["n_classes"]), params)


def _check_params(method: str, randomized: bool = False, lam=None, k_reg=None) -> dict:
    if method == "lac":
        if randomized or lam is not None or k_reg is not None:
            raise ConfigError(
                f"expected no randomized/lam/k_reg for method='lac', got randomized={randomized}, "
                f"lam={lam}, k_reg={k_reg}; they apply to 'aps' (randomized) and 'raps' (all three)"
            )
        return {"randomized": False}
    if method == "aps":
        if lam is not None or k_reg is not None:
            raise ConfigError(
                f"expected no lam/k_reg for method='aps', got lam={lam}, k_reg={k_reg}: use method='raps'"
            )
        return {"randomized": bool(randomized)}
    lam = RAPS_DEFAULTS["lam"] if lam is None else lam
    k_reg = RAPS_DEFAULTS["k_reg"] if k_reg is None else k_reg
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ConfigError(f"expected lam >= 0 for RAPS, got {lam!r}")
    k_reg = _checks.check_positive_int(k_reg, "k_reg", minimum=0)
    return {"randomized": bool(randomized), "lam": float(lam), "k_reg": k_reg}


def _uniforms(n: int, randomized: bool, rng) -> np.ndarray:
    if not randomized:
        return np.ones(n)
    return np.random.default_rng(rng).random(n)


def conformal_scores(probs, method: str = "lac", *, params: dict | None = None, u=None) -> np.ndarray:
    """The [N, C] matrix of scores s(x_i, c) for every sample and class (larger = less plausible).

    ``u`` [N] are the APS/RAPS randomisation draws; None means u = 1 (not randomised).
    """
    p = _checks.check_probs(probs)
    _checks.check_choice(method, "method", METHODS)
    params = _check_params(method, **(params or {}))
    if method == "lac":
        return 1.0 - p
    n, c = p.shape
    u = np.ones(n) if u is None else np.asarray(u, dtype=np.float64)
    if u.shape != (n,) or not np.all((u >= 0.0) & (u <= 1.0)):
        raise ConfigError(f"expected u as {n} numbers in [0, 1] (one per sample), got shape {u.shape}")
    order = np.argsort(-p, axis=1, kind="stable")  # descending; ties keep the lower class first
    sorted_p = np.take_along_axis(p, order, axis=1)
    before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass strictly above each rank
    sorted_scores = before + u[:, None] * sorted_p
    if method == "raps":
        rank = np.arange(1, c + 1)
        sorted_scores = sorted_scores + params["lam"] * np.maximum(0, rank - params["k_reg"])[None, :]
    scores = np.empty_like(sorted_scores)
    np.put_along_axis(scores, order, sorted_scores, axis=1)  # back to class order
    return scores


def quantile_rank(n: int, alpha: float) -> int:
    """k = ceil((n + 1)(1 - alpha)): qhat is the k-th smallest of n calibration scores.

    A 1e-9 slack absorbs float error so that e.g. n = 19, alpha = 0.05 gives
    exactly 19, not 20. Raises when k > n: with fewer than 1/alpha - 1
    samples no finite threshold can promise 1 - alpha coverage.
    """
    alpha = _checks.check_fraction(alpha, "alpha")
    k = math.ceil((n + 1) * (1.0 - alpha) - 1e-9)
    if k > n:
        need = math.ceil((1.0 - alpha) / alpha - 1e-9)
        raise CalibrationError(
            f"expected at least {need} calibration samples for alpha={alpha} "
            f"(n >= 1/alpha - 1), got n={n}: add calibration data or raise alpha"
        )
    return k


def fit_conformal(
    probs,
    labels,
    alpha: float = 0.1,
    method: str = "lac",
    *,
    randomized: bool = False,
    lam: float | None = None,
    k_reg: int | None = None,
    seed=None,
) -> ConformalThreshold:
    """Fit ``qhat`` on held-out softmax probabilities [N, C] and integer labels [N].

    ``lam`` / ``k_reg`` (RAPS only) default to 0.01 / 5. ``seed`` (an int or a
    ``numpy.random.Generator``) drives the u draws when ``randomized=True``,
    drawn as ``rng.random(n)``. See the module docstring for the guarantee.
    """
    _checks.check_choice(method, "method", METHODS)
    params = _check_params(method, randomized, lam, k_reg)
    p = _checks.check_probs(probs)
    n, c = p.shape
    y = _checks.check_labels(labels, n, c)
    k = quantile_rank(n, alpha)
    u = _uniforms(n, params["randomized"], seed)
    scores = conformal_scores(p, method, params=params, u=u)[np.arange(n), y]
    qhat = float(np.partition(scores, k - 1)[k - 1])
    return ConformalThreshold(method, float(alpha), qhat, n, c, params)


def prediction_sets(probs, threshold: ConformalThreshold, *, allow_empty: bool = False, seed=None) -> np.ndarray:
    """Boolean mask [N, C]: True where class c is in the set of sample i.

    ``allow_empty=False`` adds the top-1 class to any empty set (coverage can
    only rise). ``seed`` drives the u draws of a randomised threshold.
    """
    if not isinstance(threshold, ConformalThreshold):
        raise ConfigError(
            f"expected a ConformalThreshold (from fit_conformal or ConformalThreshold.from_dict), "
            f"got {type(threshold).__name__}"
        )
    p = _checks.check_probs(probs)
    if p.shape[1] != threshold.n_classes:
        raise CalibrationError(
            f"expected probabilities over {threshold.n_classes} classes, as at calibration, got "
            f"{p.shape[1]}: this threshold was fitted for another model head"
        )
    u = _uniforms(p.shape[0], threshold.params.get("randomized", False), seed)
    mask = conformal_scores(p, threshold.method, params=threshold.params, u=u) <= threshold.qhat
    if not allow_empty:
        empty = ~mask.any(axis=1)
        mask[empty, np.argmax(p[empty], axis=1)] = True
    return mask


def set_members(mask: np.ndarray, probs=None) -> list[np.ndarray]:
    """The class indices in each set: in increasing index order, or most probable first when ``probs`` is given."""
    mask = np.asarray(mask, dtype=bool)
    if probs is None:
        return [np.flatnonzero(row) for row in mask]
    p = _checks.check_probs(probs)
    if p.shape != mask.shape:
        raise ConfigError(f"expected probs of the mask's shape {mask.shape}, got {p.shape}")
    order = np.argsort(-p, axis=1, kind="stable")
    return [o[m[o]] for o, m in zip(order, mask)]
