"""The calibration file: fitted on held-out data, kept with the model, applied by the classifier.

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

A ``Calibration`` records the model it belongs to (name, number of classes,
label names and their SHA-256), what was fitted, on which data and split, the
twoends version and the held-out metrics; ``check`` refuses a model with other
classes (CalibrationError) and warns when only the model name differs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..encoding import json_safe
from ..errors import CalibrationError, ConfigError
from ..labels import LabelMap
from ..head.activations import softmax
from .conformal import METHODS as SCORES, ConformalThreshold, fit_conformal, prediction_sets, set_members
from .metrics import CalibrationReport, calibration_report
from .temperature import fit_temperature, fit_vector_scaling
from .thresholds import ClassThresholds, apply_thresholds, fit_thresholds

__all__ = ["Calibration", "Fitted", "fit_calibration", "load_calibration", "FORMAT", "FORMAT_VERSION"]

FORMAT = "twoends.calibration"
FORMAT_VERSION = 1
METHODS = ("temperature", "vector", "none")


def labels_hash(names) -> str:
    """SHA-256 of the label names in output order (JSON list, UTF-8): one digest per label set."""
    return hashlib.sha256(json.dumps(list(names), ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class Calibration:
    """What a classifier applies: a temperature, conformal sets and/or multi-label thresholds."""

    labels: tuple[str, ...]
    model: str | None = None
    activation: str = "softmax"
    method: str = "temperature"
    temperature: float = 1.0
    vector_scaling: dict | None = None  # fitted and reported, never applied (see the module docstring)
    conformal: ConformalThreshold | None = None
    thresholds: ClassThresholds | None = None
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    twoends_version: str | None = None
    source: str | None = field(default=None, compare=False)  # the file it was read from, if any

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(str(n) for n in self.labels))
        if not self.labels:
            raise CalibrationError("expected the label names of the calibrated model, got none")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature > 0):
            raise CalibrationError(f"expected a finite temperature > 0, got {self.temperature!r}")
        if self.conformal is not None and self.conformal.n_classes != len(self.labels):
            raise CalibrationError(
                f"the conformal threshold is for {self.conformal.n_classes} classes, the labels are {len(self.labels)}"
            )
        if self.thresholds is not None and len(self.thresholds.thresholds) != len(self.labels):
            raise CalibrationError(
                f"expected one threshold per class ({len(self.labels)}), got {len(self.thresholds.thresholds)}"
            )

    # --- identity --------------------------------------------------------------------

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def labels_sha256(self) -> str:
        return labels_hash(self.labels)

    @property
    def id(self) -> str:
        """8 hex digits of the SHA-256 of the file's content: the same fit gives the same id."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]

    @property
    def name(self) -> str:
        """What every Prediction's ``calibration`` field says: the file name, or ``cal-<id>``."""
        return os.path.basename(self.source) if self.source else f"cal-{self.id}"

    def __repr__(self) -> str:
        parts = [f"T={self.temperature:.4g}"]
        if self.conformal:
            parts.append(f"conformal {self.conformal.method} alpha={self.conformal.alpha}")
        if self.thresholds:
            parts.append(f"thresholds ({self.thresholds.objective})")
        return f"Calibration({self.name!r}, model={self.model!r}, {self.n_classes} classes, {', '.join(parts)})"

    # --- applying ----------------------------------------------------------------------

    def check(self, labels: Any, *, model: str | None = None, activation: str | None = None) -> None:
        """Raise CalibrationError unless ``labels`` (the model's, in output order) are the ones fitted.

        A different model name alone is a warning: the same network under
        another name is fine; other classes are not.
        """
        names = tuple(LabelMap.from_any(labels).names)
        fix = (
            "use the calibration file fitted for this model, or fit one with "
            "`twoends calibrate DATA --model MODEL -o calibration.json`"
        )
        if len(names) != self.n_classes:
            raise CalibrationError(
                f"calibration {self.name!r} was fitted for {self.n_classes} classes (model {self.model!r}), "
                f"this model has {len(names)}: {fix}"
            )
        if names != self.labels:
            diff = [i for i, (a, b) in enumerate(zip(names, self.labels)) if a != b]
            shown = ", ".join(f"#{i}: {self.labels[i]!r} vs {names[i]!r}" for i in diff[:3])
            raise CalibrationError(
                f"calibration {self.name!r} was fitted for other class names: {len(diff)} of {self.n_classes} "
                f"differ ({shown}{', ...' if len(diff) > 3 else ''}; calibration vs model): {fix}"
            )
        if activation is not None and activation != self.activation:
            raise CalibrationError(
                f"calibration {self.name!r} was fitted for a {self.activation} head, this model's head is "
                f"{activation}: a temperature or threshold means something else under the other activation; {fix}"
            )
        if model is not None and self.model is not None and model != self.model:
            warnings.warn(
                f"calibration {self.name!r} was fitted for model {self.model!r} and is applied to {model!r}: "
                "the classes match, but a temperature or threshold fitted for one network is wrong for "
                "another. Ignore this if it is the same network under another name.",
                UserWarning,
                stacklevel=3,
            )

    def set_function(self):
        """For the Head: probabilities [B, C] -> each row's conformal set, most probable first; None without one."""
        threshold = self.conformal
        if threshold is None:
            return None

        def sets(probs: np.ndarray) -> list:
            probs = np.asarray(probs, dtype=np.float64)
            # rows the Head could not answer come as zeros: they get an empty set, not an exception
            ok = np.abs(probs.sum(axis=1) - 1.0) < 1e-3
            out = [np.zeros(0, dtype=np.int64)] * len(probs)
            if ok.any():
                mask = prediction_sets(probs[ok], threshold)
                for i, members in zip(np.flatnonzero(ok), set_members(mask, probs[ok])):
                    out[i] = members
            return out

        return sets

    def head_settings(self) -> dict:
        """Keyword arguments for ``Head``: temperature, prediction_sets, thresholds, calibration."""
        return {
            "temperature": self.temperature,
            "prediction_sets": self.set_function(),
            "thresholds": None if self.thresholds is None else self.thresholds.thresholds,
            "calibration": self.name,
        }

    # --- the file ----------------------------------------------------------------------

    def to_dict(self) -> dict:
        conformal = None
        if self.conformal is not None:
            conformal = {"score": self.conformal.method, **self.conformal.to_dict()}
        # one convention for numbers that are not finite (twoends.encoding): +-inf as "inf" / "-inf", NaN as null
        return json_safe({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "twoends_version": self.twoends_version,
            "model": self.model,
            "n_classes": self.n_classes,
            "labels_sha256": self.labels_sha256,
            "labels": list(self.labels),
            "activation": self.activation,
            "method": self.method,
            "temperature": self.temperature,
            "vector_scaling": self.vector_scaling,
            "conformal": conformal,
            "thresholds": None if self.thresholds is None else self.thresholds.to_dict(),
            "data": self.data,
            "metrics": self.metrics,
        })

    @classmethod
    def from_dict(cls, d: Any, source: str | None = None) -> "Calibration":
        where = source or "calibration"
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise CalibrationError(
                f"{where} is not a twoends calibration: expected a JSON object with \"format\": \"{FORMAT}\" "
                "(written by `twoends calibrate`)"
            )
        version = d.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CalibrationError(
                f"{where} has format_version {version!r}; this twoends reads up to {FORMAT_VERSION}: upgrade twoends"
            )
        labels = d.get("labels")
        if not isinstance(labels, list) or len(labels) != d.get("n_classes"):
            raise CalibrationError(f"{where}: expected 'labels' as a list of n_classes={d.get('n_classes')} names")
        if labels_hash(labels) != d.get("labels_sha256"):
            raise CalibrationError(
                f"{where}: the label names do not match labels_sha256 (the file was edited or damaged); "
                "fit the calibration again"
            )
        if d.get("method") not in METHODS:
            raise CalibrationError(f"{where}: expected method one of {METHODS}, got {d.get('method')!r}")
        try:
            conformal = None if d.get("conformal") is None else ConformalThreshold.from_dict(
                {k: v for k, v in d["conformal"].items() if k != "score"}
            )
            thresholds = None if d.get("thresholds") is None else ClassThresholds.from_dict(d["thresholds"])
            return cls(
                labels=tuple(labels),
                model=d.get("model"),
                activation=d.get("activation", "softmax"),
                method=d["method"],
                temperature=float(d.get("temperature", 1.0)),
                vector_scaling=d.get("vector_scaling"),
                conformal=conformal,
                thresholds=thresholds,
                data=dict(d.get("data") or {}),
                metrics=dict(d.get("metrics") or {}),
                twoends_version=d.get("twoends_version"),
                source=source,
            )
        except (ConfigError, TypeError, ValueError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"{where}: {exc}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON file atomically (a temporary file renamed into place: never half-written)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        p = Path(path)
        if not p.is_file():
            raise CalibrationError(f"calibration file not found: {str(p)!r} (write one with `twoends calibrate`)")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CalibrationError(f"{p} is not valid JSON ({exc}): expected a file written by `twoends calibrate`") from None
        return cls.from_dict(data, source=str(p))


def load_calibration(calibration: Any) -> Calibration:
    """A Calibration from a Calibration, a path, or a dict (``to_dict()``)."""
    if isinstance(calibration, Calibration):
        return calibration
    if isinstance(calibration, (str, os.PathLike)):
        return Calibration.load(calibration)
    if isinstance(calibration, dict):
        return Calibration.from_dict(calibration)
    raise ConfigError(
        f"expected calibration as a path to a calibration JSON file or a Calibration, got {type(calibration).__name__}"
    )


# --- fitting -----------------------------------------------------------------------------


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
) -> Fitted:
    """Fit on one random part of (logits [N, C], targets) and report on the other (see the module docstring).

    ``targets``: class indices [N] (softmax models) or 0/1 rows [N, C]
    (sigmoid, multi-label). ``split``: the fraction used to fit. ``data``:
    where the samples came from, recorded in the file.
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
        labels=tuple(label_map.names), model=model, activation=activation, twoends_version=__version__,
    )
    info = {"fraction": split, "seed": int(seed), "fit": int(n_fit), "report": int(n - n_fit)}
    if activation == "sigmoid":
        return _fit_multilabel(z, targets, fit_idx, report_idx, base, info, method, conformal, thresholds, data)
    if thresholds is not None:
        raise ConfigError(
            "multi-label thresholds apply to sigmoid (multi-label) models; this model uses softmax "
            "(one class per input): drop --multilabel-thresholds, or load the model with activation='sigmoid'"
        )
    y = np.asarray(targets, dtype=np.int64)
    if y.shape != (n,):
        raise CalibrationError(f"expected one class index per sample ({n}), got targets of shape {y.shape}")
    return _fit_single(z, y, fit_idx, report_idx, base, info, method, conformal, score, n_bins, data)


def _fit_single(z, y, fit_idx, report_idx, base, info, method, alpha, score, n_bins, data) -> Fitted:
    scale_idx, conf_idx = fit_idx, fit_idx
    if method != "none" and alpha is not None:
        if len(fit_idx) < 2:
            raise ConfigError(
                f"a temperature and a conformal threshold need disjoint samples: got {len(fit_idx)} to fit; add data"
            )
        half = len(fit_idx) // 2
        scale_idx, conf_idx = fit_idx[:half], fit_idx[half:]
    info.update(temperature=int(len(scale_idx)) if method != "none" else 0,
                conformal=int(len(conf_idx)) if alpha is not None else 0)
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
            "score": score, "alpha": float(alpha), "qhat": threshold.qhat,
            "coverage": float(mask[np.arange(len(yr)), yr].mean()),
            "mean_set_size": float(mask.sum(axis=1).mean()),
            "n": int(len(yr)),
        }
    cal = Calibration(
        **base, method=method, temperature=float(t), vector_scaling=vector, conformal=threshold,
        data={**(data or {}), "split": info}, metrics=metrics,
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
