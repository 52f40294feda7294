"""Calibration at the level of label groups: "is it a cat?" made honest, with a guarantee.

With disjoint groups (the classes in no group form one more group, ``(other)``),
a softmax model's group probabilities ``q_g = sum_{c in g} p_c`` are a distribution
over the groups, and each true class belongs to exactly one group. So everything
that works for classes works for groups:

* the temperature is fitted by minimising the NLL of the true **group**,
  ``-log q_g(z / T)`` (a bounded 1-D search on log T, as for classes); the head
  applies it to every logit, so class and group probabilities move together;
* split-conformal sets are fitted on the group probabilities and the true groups:
  a new input's set of groups holds its true group with probability >= 1 - alpha
  (marginally, on exchangeable data - the guarantee of ``conformal.py``);
* the held-out report (ECE, NLL, accuracy) is on the groups.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..head.activations import log_softmax
from ..label_groups import LabelGroups
from .conformal import fit_conformal, prediction_sets
from .metrics import calibration_report

__all__ = ["fit_group_level", "fit_group_temperature", "group_log_probabilities", "group_targets"]


def group_log_probabilities(logits, groups: LabelGroups) -> np.ndarray:
    """[N, G] log q_g = logsumexp of the class log-probabilities over each group (exact in the tails)."""
    from scipy.special import logsumexp

    logp = log_softmax(np.asarray(logits, dtype=np.float64))
    return np.stack([logsumexp(logp[:, list(m)], axis=1) for m in groups.members], axis=1)


def group_targets(targets, groups: LabelGroups) -> np.ndarray:
    """The group index of each class target (groups must be a partition: ``LabelGroups.partition``)."""
    of = {c: g for g, m in enumerate(groups.members) for c in m}
    return np.asarray([of[int(t)] for t in targets], dtype=np.int64)


def fit_group_temperature(logits, groups: LabelGroups, group_y, *, bounds=(0.05, 20.0)) -> float:
    """The T minimising the NLL of the true group under ``softmax(logits / T)`` summed over groups."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(group_y, dtype=np.int64)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return float(-np.mean(group_log_probabilities(z * math.exp(-log_t), groups)[rows, y]))

    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
    if min(res.x - lo, hi - res.x) < 1e-3:
        import warnings

        warnings.warn(
            f"the group-level temperature {math.exp(res.x):.4g} is at the edge of {bounds}: the group "
            "NLL keeps falling beyond it (too little or too easy data)",
            UserWarning,
            stacklevel=2,
        )
    return float(math.exp(res.x))


def fit_group_level(z, y, fit_idx, report_idx, *, groups: LabelGroups, method: str, alpha, score: str, n_bins: int):
    """(temperature, conformal threshold or None, metrics) fitted on groups (see the module docstring)."""
    if method == "vector":
        raise ConfigError("vector scaling is per class; at the group level fit a temperature (--method temperature)")
    yg = group_targets(y, groups)
    scale_idx, conf_idx = fit_idx, fit_idx
    if method != "none" and alpha is not None:
        half = len(fit_idx) // 2
        scale_idx, conf_idx = fit_idx[:half], fit_idx[half:]
    t = fit_group_temperature(z[scale_idx], groups, yg[scale_idx]) if method != "none" else 1.0
    before = group_log_probabilities(z[report_idx], groups)
    after = group_log_probabilities(z[report_idx] / t, groups)
    yr = yg[report_idx]
    metrics = {
        "level": "groups",
        "before": _summary(before, yr, n_bins),
        "after": _summary(after, yr, n_bins),
        "sizes": {
            "temperature": int(len(scale_idx)) if method != "none" else 0,
            "conformal": int(len(conf_idx)) if alpha is not None else 0,
        },
    }
    threshold = None
    if alpha is not None:
        q_fit = np.exp(group_log_probabilities(z[conf_idx] / t, groups))
        threshold = fit_conformal(q_fit, yg[conf_idx], alpha, score)
        mask = prediction_sets(np.exp(after), threshold)
        metrics["conformal"] = {
            "score": score,
            "alpha": float(alpha),
            "qhat": threshold.qhat,
            "level": "groups",
            "coverage": float(mask[np.arange(len(yr)), yr].mean()),
            "mean_set_size": float(mask.sum(axis=1).mean()),
            "n": int(len(yr)),
        }
    return t, threshold, metrics


def _summary(log_q: np.ndarray, y: np.ndarray, n_bins: int) -> dict:
    # log q is a valid "logit" vector: softmax(log q) == q, so the class-level metrics apply to groups
    r = calibration_report(log_q, y, n_bins=n_bins, top_k=(1,))
    return {"n": r.n, "accuracy": r.accuracy, "nll": r.nll, "brier": r.brier, "ece": r.ece, "mce": r.mce}
