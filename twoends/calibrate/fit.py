"""Fitting a calibration: split labelled logits, fit on one part, report on the other.

``fit_calibration(logits, targets, labels, ...)`` splits labelled logits at
random into a *fit* part and a *report* part (never the same samples for both),
fits on the first and measures on the second:

* ``method="temperature"``: one T by NLL (``fit_temperature``); applied by the
  Head, which divides every logit by T. Accuracy cannot change.
* ``method="vector"``: vector scaling (per-class scale and bias) is fitted and
  its held-out metrics reported next to temperature scaling's, but **the
  temperature is what gets applied**: the Head has a scalar temperature only,
  and a per-class affine map can change the ranking (and the accuracy) of a
  model people trust as is. The file records the vector parameters with
  ``"applied": false``.
* ``method="none"``: no rescaling (e.g. conformal sets on the raw model).
* ``conformal=alpha``: split-conformal sets (``score`` lac / aps / raps) on the
  probabilities *after* the temperature. With a temperature the fit part is
  halved: T on one half, the conformal threshold on the other, so the score
  function is fixed before the conformal samples are seen and the
  finite-sample guarantee (coverage >= 1 - alpha on exchangeable data) holds exactly.
* ``thresholds="f1"`` or ``"precision:0.9"``: per-class thresholds for
  multi-label (sigmoid) models; no temperature, no conformal sets.
* ``groups=`` with ``level="groups"``: the temperature and conformal sets are fitted
  on label groups instead of classes (``groups.py``).
* ``ood_tpr=0.95``: an out-of-distribution threshold on the score of ``ood_method``,
  keeping that fraction of the fit split (``ood.py``); its held-out rate is reported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import CalibrationError, ConfigError
from ..head.activations import softmax
from ..label_groups import LabelGroups
from ..labels import LabelMap
from .calibration import METHODS, Calibration
from .conformal import METHODS as SCORES
from .conformal import fit_conformal, prediction_sets
from .metrics import CalibrationReport, calibration_report
from .ood import OODThreshold, fit_ood_threshold
from .temperature import fit_temperature, fit_vector_scaling
from .thresholds import apply_thresholds, fit_thresholds

__all__ = ["Fitted", "fit_calibration"]


@dataclass(frozen=True)
class Fitted:
    """A fitted Calibration with the held-out reports (None for multi-label)."""

    calibration: Calibration
    before: CalibrationReport | None = None
    after: CalibrationReport | None = None
    fit_index: np.ndarray | None = None  # rows of the logits used to fit
    report_index: np.ndarray | None = None  # rows used only to report

    def plot(self, path, *, title: str | None = None) -> Path:
        """The reliability diagram of the report split after calibration (ECE before in the title)."""
        from .reliability import plot_reliability

        if self.after is None:
            raise ConfigError("a reliability diagram needs a single-label (softmax) model; this fit is multi-label")
        cal = self.calibration
        m = cal.metrics
        title = title or (
            f"{cal.model or 'model'}: held-out split (n={m['split']['report']}) after calibration, T={cal.temperature:.3g}\n"
            f"before calibration: ECE {100 * m['before']['ece']:.2f}%"
        )
        return plot_reliability(self.after.bins, path, title=title)


def fit_calibration(
    logits,
    targets,
    labels,
    *,
    model: str | None = None,
    activation: str = "softmax",
    method: str = "temperature",
    conformal: float | None = None,
    score: str = "lac",
    thresholds: str | None = None,
    split: float = 0.5,
    seed: int = 0,
    n_bins: int = 15,
    data: dict | None = None,
    groups: Any = None,
    level: str = "classes",
    ood_tpr: float | None = None,
    ood_method: str = "energy",
    ood_scores: Any = None,
) -> Fitted:
    """Fit on one random part of (logits [N, C], targets) and report on the other (see the module docstring).

    ``targets``: class indices [N] (softmax models) or 0/1 rows [N, C]
    (sigmoid, multi-label). ``split``: the fraction used to fit. ``data``:
    where the samples came from, recorded in the file. ``groups`` with
    ``level="groups"``: fit on label groups (``groups.py``). ``ood_tpr``: also an
    out-of-distribution threshold on ``ood_method``'s score (``ood_scores``: the rows'
    own, e.g. an ensemble's), keeping that fraction of the fit split.
    """
    z = np.asarray(logits, dtype=np.float64)
    label_map = LabelMap.from_any(labels)
    if z.ndim != 2 or z.shape[1] != len(label_map):
        raise CalibrationError(f"expected logits [N, {len(label_map)}] (one column per label), got shape {z.shape}")
    if method not in METHODS:
        raise ConfigError(f"expected method one of {METHODS}, got {method!r}")
    if score not in SCORES:
        raise ConfigError(f"expected a conformal score one of {SCORES}, got {score!r}")
    split = float(split)
    if not 0.0 < split < 1.0:
        raise ConfigError(f"expected split (the fraction used to fit) strictly between 0 and 1, got {split}")
    n = z.shape[0]
    n_fit = int(round(n * split))
    if not 1 <= n_fit <= n - 1:
        raise ConfigError(
            f"{n} labelled sample(s) with split={split} leave {n_fit} to fit and {n - n_fit} to report on; "
            "both need at least one: add data or change --split"
        )
    perm = np.random.default_rng(seed).permutation(n)
    fit_idx, report_idx = perm[:n_fit], perm[n_fit:]
    base = dict(
        labels=tuple(label_map.names),
        model=model,
        activation=activation,
        twoends_version=__version__,
    )
    info = {"fraction": split, "seed": int(seed), "fit": int(n_fit), "report": int(n - n_fit)}
    if activation == "sigmoid":
        fitted = _fit_multilabel(z, targets, fit_idx, report_idx, base, info, method, conformal, thresholds, data)
        return _with_ood(fitted, z, ood_tpr, ood_method, ood_scores)
    if thresholds is not None:
        raise ConfigError(
            "multi-label thresholds apply to sigmoid (multi-label) models; this model uses softmax "
            "(one class per input): drop --multilabel-thresholds, or load the model with activation='sigmoid'"
        )
    y = np.asarray(targets, dtype=np.int64)
    if y.shape != (n,):
        raise CalibrationError(f"expected one class index per sample ({n}), got targets of shape {y.shape}")
    if level == "groups":
        fitted = _fit_groups(z, y, fit_idx, report_idx, base, info, method, conformal, score, n_bins, data, groups)
    elif level != "classes":
        raise ConfigError(f"expected level 'classes' or 'groups', got {level!r}")
    else:
        fitted = _fit_single(z, y, fit_idx, report_idx, base, info, method, conformal, score, n_bins, data)
    return _with_ood(fitted, z, ood_tpr, ood_method, ood_scores)


def _fit_groups(z, y, fit_idx, report_idx, base, info, method, alpha, score, n_bins, data, groups) -> Fitted:
    from .groups import fit_group_level

    if groups is None:
        raise ConfigError("a group-level calibration needs the groups: pass groups= (--groups FILE)")
    part = LabelGroups.resolve(groups, base["labels"]).partition(z.shape[1])
    t, threshold, metrics = fit_group_level(
        z, y, fit_idx, report_idx, groups=part, method=method, alpha=alpha, score=score, n_bins=n_bins
    )
    info.update(metrics.pop("sizes"))
    cal = Calibration(
        **base,
        method=method,
        temperature=float(t),
        conformal=threshold,
        groups=part,
        level="groups",
        data={**(data or {}), "split": info},
        metrics={"split": info, **metrics},
    )
    return Fitted(cal, fit_index=fit_idx, report_index=report_idx)


def _with_ood(fitted: Fitted, z: np.ndarray, tpr: float | None, method: str, given: Any = None) -> Fitted:
    """The fit with an out-of-distribution threshold keeping ``tpr`` of the fit split (reported on the other).

    ``given``: the rows' own scores (an ensemble's come from its members, not from its
    combined logits); used for the scores that do not depend on the temperature.
    """
    if tpr is None:
        return fitted
    from ..head.activations import sigmoid
    from ..head.ood import ood_scores  # the head's own formulas: the threshold means what the rows say

    cal = fitted.calibration
    # a one-logit binary model's stored logits are [0, z]: the head scores them as two softmax classes
    binary = z.shape[1] == 2 and bool(np.all(z[:, 0] == 0))
    kind = "softmax" if cal.activation == "softmax" or binary else "sigmoid"
    zt = z / cal.temperature
    p = softmax(zt) if kind == "softmax" else np.asarray(sigmoid(zt), dtype=np.float64)
    if given is not None and method != "max_probability":
        s = np.asarray(given, dtype=np.float64)
    else:
        s = np.asarray(ood_scores(z, method, activation=kind, probabilities=p), dtype=np.float64)
    threshold = fit_ood_threshold(s[fitted.fit_index], tpr)
    report = s[fitted.report_index]
    metrics = {
        **cal.metrics,
        "ood": {
            "method": method,
            "tpr": float(tpr),
            "threshold": threshold,
            "n_fit": int(len(fitted.fit_index)),
            "held_out_kept": float(np.mean(report <= threshold)),
            "n_held_out": int(len(report)),
        },
    }
    ood = OODThreshold(method, float(tpr), threshold, int(len(fitted.fit_index)))
    return dataclasses.replace(fitted, calibration=dataclasses.replace(cal, ood=ood, metrics=metrics))


def _fit_single(z, y, fit_idx, report_idx, base, info, method, alpha, score, n_bins, data) -> Fitted:
    scale_idx, conf_idx = fit_idx, fit_idx
    if method != "none" and alpha is not None:
        if len(fit_idx) < 2:
            raise ConfigError(
                f"a temperature and a conformal threshold need disjoint samples: got {len(fit_idx)} to fit; add data"
            )
        half = len(fit_idx) // 2
        scale_idx, conf_idx = fit_idx[:half], fit_idx[half:]
    info.update(
        temperature=int(len(scale_idx)) if method != "none" else 0,
        conformal=int(len(conf_idx)) if alpha is not None else 0,
    )
    t, vector = 1.0, None
    if method != "none":
        t = fit_temperature(z[scale_idx], y[scale_idx])
    zr, yr = z[report_idx], y[report_idx]
    before = calibration_report(zr, yr, n_bins=n_bins)
    after = calibration_report(zr / t, yr, n_bins=n_bins)
    metrics = {"split": info, "before": _summary(before, zr, yr, n_bins), "after": _summary(after, zr / t, yr, n_bins)}
    if method == "vector":
        w, b = fit_vector_scaling(z[scale_idx], y[scale_idx])
        metrics["vector_scaling"] = _summary(calibration_report(zr * w + b, yr, n_bins=n_bins), zr * w + b, yr, n_bins)
        vector = {"applied": False, "scale": w.tolist(), "bias": b.tolist()}
    threshold = None
    if alpha is not None:
        threshold = fit_conformal(softmax(z[conf_idx] / t), y[conf_idx], alpha, score)
        mask = prediction_sets(softmax(zr / t), threshold)
        metrics["conformal"] = {
            "score": score,
            "alpha": float(alpha),
            "qhat": threshold.qhat,
            "coverage": float(mask[np.arange(len(yr)), yr].mean()),
            "mean_set_size": float(mask.sum(axis=1).mean()),
            "n": int(len(yr)),
        }
    cal = Calibration(
        **base,
        method=method,
        temperature=float(t),
        vector_scaling=vector,
        conformal=threshold,
        data={**(data or {}), "split": info},
        metrics=metrics,
    )
    return Fitted(cal, before, after, fit_idx, report_idx)


def _fit_multilabel(z, targets, fit_idx, report_idx, base, info, method, alpha, objective, data) -> Fitted:
    from ..head import sigmoid

    if alpha is not None:
        raise ConfigError(
            "conformal sets here are for single-label (softmax) models; this is a sigmoid (multi-label) "
            "model: use --multilabel-thresholds instead"
        )
    if method not in ("temperature", "none") or objective is None:
        raise ConfigError(
            "a sigmoid (multi-label) model is calibrated with per-class thresholds: pass "
            "thresholds='f1' or 'precision:0.9' (--multilabel-thresholds); temperature and vector "
            "scaling are fitted for softmax models"
        )
    kind, min_precision = _parse_objective(objective)
    t = np.asarray(targets).astype(bool)
    if t.shape != z.shape:
        raise CalibrationError(f"expected 0/1 targets of shape {z.shape} (multi-hot rows), got {t.shape}")
    p = np.asarray(sigmoid(z), dtype=np.float64)
    fitted = fit_thresholds(p[fit_idx], t[fit_idx], objective=kind, min_precision=min_precision)
    pr, tr = p[report_idx], t[report_idx]
    info.update(thresholds=int(len(fit_idx)))
    metrics = {
        "split": info,
        "before": _multilabel_summary(pr >= 0.5, tr),
        "after": _multilabel_summary(apply_thresholds(pr, fitted), tr),
        "notes": {base["labels"][c]: note for c, note in fitted.notes.items()},
    }
    cal = Calibration(**base, method="none", thresholds=fitted, data={**(data or {}), "split": info}, metrics=metrics)
    return Fitted(cal, fit_index=fit_idx, report_index=report_idx)


def _parse_objective(objective: str) -> tuple[str, float | None]:
    """'f1' or 'precision:0.9' -> (objective, min_precision)."""
    kind, _, value = str(objective).partition(":")
    if kind == "f1" and not value:
        return "f1", None
    if kind == "precision" and value:
        try:
            return "precision", float(value)
        except ValueError:
            pass
    raise ConfigError(f"expected 'f1' or 'precision:P' (e.g. precision:0.9), got {objective!r}")


def _summary(report: CalibrationReport, z, y, n_bins: int) -> dict:
    mass = calibration_report(z, y, n_bins=n_bins, binning="mass", top_k=(1,))
    out = {"n": report.n, "accuracy": report.accuracy}
    if 5 in report.top_k:
        out["top5"] = report.top_k[5]
    out.update(nll=report.nll, brier=report.brier, ece=report.ece, ece_mass=mass.ece, mce=report.mce)
    return out


def _multilabel_summary(pred: np.ndarray, truth: np.ndarray) -> dict:
    tp = np.sum(pred & truth, axis=0).astype(float)
    fp = np.sum(pred & ~truth, axis=0).astype(float)
    fn = np.sum(~pred & truth, axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    micro_den = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "n": int(pred.shape[0]),
        "micro_f1": float(2 * tp.sum() / micro_den) if micro_den else float("nan"),
        "macro_f1": float(np.nanmean(f1)) if np.any(~np.isnan(f1)) else float("nan"),
        "precision": float(tp.sum() / (tp.sum() + fp.sum())) if tp.sum() + fp.sum() else float("nan"),
        "recall": float(tp.sum() / (tp.sum() + fn.sum())) if tp.sum() + fn.sum() else float("nan"),
    }
