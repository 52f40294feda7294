"""Per-class decision thresholds for multi-label classifiers, fitted on held-out data.

Inputs are sigmoid probabilities ``probs`` [N, C] (each class on its own, no
sum-to-1) and 0/1 ``targets`` [N, C]. A class is predicted when
``probs >= threshold``. Every candidate threshold is an observed probability of
that class, so "p >= t" reproduces exactly the decisions that were scored.

Objectives, class by class:

* ``"f1"``: the threshold with the highest F1 = 2 TP / (2 TP + FP + FN).
  Ties go to the highest such threshold (fewest positive predictions).
* ``"precision"``: the lowest threshold whose precision TP / (TP + FP) is at
  least ``min_precision``, i.e. the most recall that precision allows.
  (Precision is not monotone in the threshold; every candidate is checked.)
  When no threshold reaches it, the most precise one is used (ties: the
  lowest) and a note says so.

A class with no positive target in the held-out data cannot be fitted: it gets
``fallback`` (0.5 by default) and a note. ``notes`` maps class index to text;
show them to the user - each is a class whose threshold is a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CalibrationError, ConfigError
from . import _checks

__all__ = ["ClassThresholds", "fit_thresholds", "apply_thresholds"]

OBJECTIVES = ("f1", "precision")


@dataclass(frozen=True)
class ClassThresholds:
    """Fitted thresholds [C], the objective's value on the held-out data [C] (NaN where a fallback was used), notes."""

    thresholds: np.ndarray
    objective: str
    achieved: np.ndarray
    min_precision: float | None = None
    notes: dict = field(default_factory=dict)

    def apply(self, probs) -> np.ndarray:
        return apply_thresholds(probs, self)

    def to_dict(self) -> dict:
        return {
            "objective": self.objective,
            "min_precision": self.min_precision,
            "thresholds": [float(t) for t in self.thresholds],
            "achieved": [None if np.isnan(a) else float(a) for a in self.achieved],
            "notes": {str(k): v for k, v in self.notes.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ClassThresholds":
        if not isinstance(d, dict) or "thresholds" not in d or "objective" not in d:
            raise CalibrationError(f"expected a dict from ClassThresholds.to_dict(), got {d!r}")
        achieved = [np.nan if a is None else a for a in d.get("achieved", [None] * len(d["thresholds"]))]
        return cls(
            thresholds=np.asarray(d["thresholds"], dtype=np.float64),
            objective=d["objective"],
            achieved=np.asarray(achieved, dtype=np.float64),
            min_precision=d.get("min_precision"),
            notes={int(k): v for k, v in d.get("notes", {}).items()},
        )


def _check_sigmoid_probs(probs) -> np.ndarray:
    p = _checks.check_logits(probs, "probs", min_classes=1)
    lo, hi = float(p.min()), float(p.max())
    if lo < 0.0 or hi > 1.0:
        raise CalibrationError(
            f"expected sigmoid probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "these look like logits: apply sigmoid first"
        )
    return p


def _sweep(p: np.ndarray, t: np.ndarray):
    """Candidate thresholds (decreasing) with TP and number predicted positive at each.

    Sorting once gives every threshold's counts by cumulative sums; only the
    last position of each run of tied probabilities is a real threshold,
    because ``p >= v`` takes the whole tie at once.
    """
    order = np.argsort(-p, kind="stable")
    ps, ts = p[order], t[order]
    tp = np.cumsum(ts)
    predicted = np.arange(1, len(ps) + 1)
    last_of_tie = np.append(ps[1:] != ps[:-1], True)
    return ps[last_of_tie], tp[last_of_tie], predicted[last_of_tie]


def fit_thresholds(
    probs, targets, *, objective: str = "f1", min_precision: float | None = None, fallback: float = 0.5
) -> ClassThresholds:
    """Fit one threshold per class on held-out sigmoid probabilities [N, C] and 0/1 targets [N, C]."""
    _checks.check_choice(objective, "objective", OBJECTIVES)
    if objective == "precision":
        if min_precision is None:
            raise ConfigError("expected min_precision (e.g. 0.9) with objective='precision', got None")
        min_precision = float(min_precision)
        if not 0.0 < min_precision <= 1.0:
            raise ConfigError(f"expected min_precision in (0, 1], got {min_precision}")
    elif min_precision is not None:
        raise ConfigError(
            f"expected no min_precision with objective='f1', got {min_precision}: use objective='precision'"
        )
    if not 0.0 <= float(fallback) <= 1.0:
        raise ConfigError(f"expected fallback in [0, 1], got {fallback}")
    p = _check_sigmoid_probs(probs)
    t = _checks.check_multilabel_targets(targets, p.shape)

    n_classes = p.shape[1]
    thresholds = np.full(n_classes, float(fallback))
    achieved = np.full(n_classes, np.nan)
    notes: dict = {}
    for c in range(n_classes):
        positives = int(t[:, c].sum())
        if positives == 0:
            notes[c] = f"no positive targets in the held-out data: threshold {fallback} is a fallback, not fitted"
            continue
        values, tp, predicted = _sweep(p[:, c], t[:, c])
        if objective == "f1":
            f1 = 2.0 * tp / (predicted + positives)  # 2TP + FP + FN = predicted + positives
            best = int(np.argmax(f1))  # first maximum = highest threshold among ties
            thresholds[c], achieved[c] = values[best], f1[best]
        else:
            precision = tp / predicted
            ok = np.flatnonzero(precision >= min_precision)
            if ok.size:
                best = int(ok[-1])  # candidates run high to low: the last one is the lowest threshold
            else:
                best = int(np.flatnonzero(precision == precision.max())[-1])
                notes[c] = (
                    f"precision {min_precision} is not reached at any threshold on the held-out data; "
                    f"using the most precise threshold {values[best]:.6g} (precision {precision[best]:.4g})"
                )
            thresholds[c], achieved[c] = values[best], precision[best]
    return ClassThresholds(thresholds, objective, achieved, min_precision, notes)


def apply_thresholds(probs, thresholds) -> np.ndarray:
    """Boolean [N, C]: ``probs >= thresholds`` per class (a ClassThresholds or an array [C])."""
    th = thresholds.thresholds if isinstance(thresholds, ClassThresholds) else np.asarray(thresholds, dtype=np.float64)
    p = _check_sigmoid_probs(probs)
    if th.shape != (p.shape[1],):
        raise CalibrationError(
            f"expected one threshold per class ({p.shape[1]}), got shape {th.shape}: "
            "these thresholds were fitted for another model head"
        )
    return p >= th[None, :]
