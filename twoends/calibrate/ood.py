"""Out-of-distribution: a threshold fitted on in-distribution data, and how well a score separates.

The score of every Prediction (``twoends.head.ood``) is higher for inputs less like
the training data. A threshold turns it into "none of the above":

* ``fit_ood_threshold(scores, tpr=0.95)``: the k-th smallest of n in-distribution
  scores with k = ceil((n + 1) * tpr), the split-conformal rank: a new input
  exchangeable with them (same distribution) is kept with probability >= ``tpr``,
  on average over fits (one fit's rate scatters by ~sqrt(tpr (1 - tpr) / n)).
  Fitted on in-distribution data only - no out-of-distribution examples are
  needed, and none are assumed to be like the ones a user will meet.
* ``auroc(id, ood)``: the probability that an out-of-distribution input scores
  higher than an in-distribution one (ties count half): the Mann-Whitney statistic,
  equal to the area under the ROC curve with out-of-distribution as positive.
* ``fpr_at_tpr(id, ood, 0.95)``: the fraction of out-of-distribution inputs still
  taken as in-distribution when the threshold keeps 95% of the in-distribution
  ones ("FPR95" in the literature: lower is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import CalibrationError, ConfigError

__all__ = ["OODThreshold", "auroc", "fit_ood_threshold", "fpr_at_tpr", "ood_report"]


@dataclass(frozen=True)
class OODThreshold:
    """A fitted out-of-distribution threshold: ``score > threshold`` is "none of the above"."""

    method: str
    tpr: float
    threshold: float
    n: int

    def to_dict(self) -> dict:
        return {"method": self.method, "tpr": self.tpr, "threshold": self.threshold, "n": self.n}

    @classmethod
    def from_dict(cls, d: dict) -> "OODThreshold":
        try:
            return cls(str(d["method"]), float(d["tpr"]), float(d["threshold"]), int(d["n"]))
        except (KeyError, TypeError, ValueError):
            raise CalibrationError(f"expected 'ood' as {{method, tpr, threshold, n}}, got {d!r}") from None


def _scores(x, what: str) -> np.ndarray:
    s = np.asarray(x, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise ConfigError(f"expected at least one {what} score, got none")
    if not np.all(np.isfinite(s)):
        raise ConfigError(f"{what} scores must be finite, got {int((~np.isfinite(s)).sum())} that are not")
    return s


def _check_tpr(tpr: float) -> float:
    tpr = float(tpr)
    if not 0.0 < tpr < 1.0:
        raise ConfigError(f"expected a true-positive rate strictly between 0 and 1 (e.g. 0.95), got {tpr}")
    return tpr


def fit_ood_threshold(scores, tpr: float = 0.95) -> float:
    """The k-th smallest in-distribution score, k = ceil((n + 1) * tpr) (see the module docstring).

    With fewer than tpr / (1 - tpr) scores (19 at 95%) k would pass n: an error, as no
    threshold among them can promise the rate.
    """
    s = np.sort(_scores(scores, "in-distribution"))
    tpr = _check_tpr(tpr)
    k = math.ceil((len(s) + 1) * tpr - 1e-9)
    if k > len(s):
        raise CalibrationError(
            f"a threshold that keeps {tpr:.0%} of in-distribution inputs needs at least "
            f"{math.ceil(tpr / (1 - tpr) - 1e-9)} in-distribution images, got {len(s)}: add data or lower the rate"
        )
    return float(s[k - 1])


def auroc(id_scores, ood_scores) -> float:
    """P(ood score > id score) + P(equal) / 2, from ranks (ties get their average rank)."""
    a, b = _scores(id_scores, "in-distribution"), _scores(ood_scores, "out-of-distribution")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a, b]), method="average")  # ties share their mean rank
    rank_sum = ranks[len(a) :].sum()
    return float((rank_sum - len(b) * (len(b) + 1) / 2.0) / (len(a) * len(b)))


def fpr_at_tpr(id_scores, ood_scores, tpr: float = 0.95) -> float:
    """The fraction of out-of-distribution scores at or under the threshold that keeps ``tpr`` of in-distribution.

    Measured on the data itself (the ceil(n * tpr)-th smallest in-distribution score,
    the point of the ROC curve where TPR first reaches ``tpr``), not a fitted threshold.
    """
    a = np.sort(_scores(id_scores, "in-distribution"))
    t = a[max(math.ceil(len(a) * _check_tpr(tpr) - 1e-9), 1) - 1]
    return float(np.mean(_scores(ood_scores, "out-of-distribution") <= t))


def ood_report(id_scores, ood_scores, *, tpr: float = 0.95, threshold: float | None = None) -> dict:
    """AUROC, FPR at ``tpr`` and, with a fitted threshold, the fraction of each side it keeps."""
    a, b = _scores(id_scores, "in-distribution"), _scores(ood_scores, "out-of-distribution")
    out = {
        "n_in": int(len(a)),
        "n_out": int(len(b)),
        "auroc": auroc(a, b),
        f"fpr_at_{round(100 * tpr)}_tpr": fpr_at_tpr(a, b, tpr),
    }
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["in_kept"] = float(np.mean(a <= threshold))
        out["out_flagged"] = float(np.mean(b > threshold))
    return out
