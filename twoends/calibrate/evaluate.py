"""Run a Classifier over labelled data: streamed metrics (evaluate) or held logits (for calibrate).

Both go through the classifier's public ``predict_iter``, so the model's own
preprocessing, batching and head are exactly what ``predict`` uses. Every
input yields one Prediction; inputs that fail (a corrupt file) are counted and
listed, never fatal, and never enter a metric.

``evaluate`` keeps no logits: each batch of scores goes into
``CalibrationMetrics`` (equal-width bins: sums per bin; equal-mass bins: two
numbers per image) and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ConfigError, OutputError
from .data import LabelledData
from .metrics import CalibrationMetrics, CalibrationReport

__all__ = ["Evaluation", "evaluate", "collect_logits"]

CHUNK = 256  # predictions per metric update: amortises validation, bounds what is held


@dataclass
class Evaluation:
    """Metrics over the images that were predicted, and the ones that failed."""

    report: CalibrationReport  # equal-width bins: accuracy, top-k, NLL, Brier, ECE, MCE, bins
    mass: CalibrationReport  # equal-mass bins: ECE / MCE
    n_inputs: int
    failed: list = field(default_factory=list)  # (input, "Type: message") of every failed input
    temperature: float = 1.0
    calibration: str | None = None
    ood: dict | None = None  # with out-of-distribution data: AUROC, FPR at 95% TPR (calibrate/ood.py)

    def to_dict(self) -> dict:
        r = self.report
        return {
            "n_inputs": self.n_inputs,
            "n_evaluated": r.n,
            "n_failed": len(self.failed),
            "n_classes": r.n_classes,
            "accuracy": r.accuracy,
            "top5": r.top_k.get(5),
            "nll": r.nll,
            "brier": r.brier,
            "ece": r.ece,
            "ece_mass": self.mass.ece,
            "mce": r.mce,
            "mce_mass": self.mass.mce,
            "n_bins": r.bins.n_bins,
            "temperature": self.temperature,
            "calibration": self.calibration,
            "failed": [{"input": i, "error": e} for i, e in self.failed],
            **({} if self.ood is None else {"ood": self.ood}),
        }

    def __repr__(self) -> str:  # the dataclass repr would print every bin's arrays
        r = self.report
        return (
            f"Evaluation(n={r.n}, failed={len(self.failed)}, accuracy={r.accuracy:.4f}, nll={r.nll:.4f}, "
            f"ece={r.ece:.4f}, temperature={self.temperature:g})"
        )

    def _repr_html_(self) -> str:  # a notebook shows the metrics and the reliability diagram inline
        import io

        from ..display import evaluation_html
        from .reliability import plot_reliability

        png = io.BytesIO()
        plot_reliability(self.report.bins, png, dpi=80)
        return evaluation_html(self.to_dict(), png.getvalue())


def _scores(pred) -> np.ndarray:
    """The logits the head turned into this prediction's probabilities (raw logits / temperature)."""
    z = np.asarray(pred.logits, dtype=np.float64)
    return z if pred.temperature == 1.0 else z / pred.temperature


def _check_single_label(classifier, data: LabelledData) -> None:
    if data.multilabel:
        raise ConfigError("evaluate measures single-label (softmax) accuracy and calibration; got multi-label data")
    if classifier.activation == "sigmoid" and (classifier.settled.num_outputs or 0) > 1:
        raise ConfigError(
            f"model {classifier.name!r} has a sigmoid (multi-label) head: accuracy, NLL and ECE here are for "
            "softmax heads; fit per-class thresholds with `twoends calibrate --multilabel-thresholds f1`"
        )


def _labelled_predictions(classifier, data: LabelledData, on_progress):
    for path, target, pred in zip(data.paths, data.targets, classifier.predict_iter(list(data.paths))):
        if pred.input != path:  # one output per input, in order: anything else is a bug worth stopping on
            raise OutputError(f"prediction for {pred.input!r} arrived where {path!r} was expected")
        if on_progress is not None:
            on_progress(1)
        yield pred, target


def evaluate(
    classifier,
    data: LabelledData,
    *,
    n_bins: int = 15,
    top_k=(1, 5),
    on_progress: Callable[[int], None] | None = None,
    ood_data=None,
) -> Evaluation:
    """Top-1/top-k accuracy, NLL, Brier, ECE and MCE (equal-width and equal-mass) of ``classifier`` on ``data``.

    ``ood_data``: out-of-distribution inputs (a folder, paths, a glob): how well the
    rows' ``ood_score`` tells them from ``data`` (AUROC, FPR at 95% TPR, and with a
    fitted threshold the fraction of each side it keeps).
    """
    _check_single_label(classifier, data)
    width = CalibrationMetrics(n_bins=n_bins, binning="width", top_k=top_k)
    mass = CalibrationMetrics(n_bins=n_bins, binning="mass", top_k=(1,))
    failed: list = []
    rows: list = []
    targets: list = []
    scores: list = []

    def flush():
        if rows:
            z, y = np.stack(rows), np.asarray(targets, dtype=np.int64)
            width.update(z, y)
            mass.update(z, y)
            rows.clear()
            targets.clear()

    for pred, target in _labelled_predictions(classifier, data, on_progress):
        if not pred.ok:
            failed.append((pred.input, f"{pred.error['type']}: {pred.error['message']}"))
            continue
        rows.append(_scores(pred))
        targets.append(target)
        scores.append(pred.ood_score)
        if len(rows) >= CHUNK:
            flush()
    flush()
    if width.n == 0:
        raise ConfigError(
            f"none of the {len(data)} images could be predicted (first error: {failed[0][1] if failed else '-'}); "
            "nothing to evaluate"
        )
    return Evaluation(
        width.compute(),
        mass.compute(),
        len(data),
        failed,
        temperature=classifier.settled.head.temperature,
        calibration=classifier.settled.head.calibration,
        ood=None if ood_data is None else _ood(classifier, scores, ood_data, failed, on_progress),
    )


def _ood(classifier, id_scores: list, ood_data, failed: list, on_progress) -> dict:
    from .ood import ood_report

    out_scores = []
    for pred in classifier.predict_iter(ood_data):
        if on_progress is not None:
            on_progress(1)
        if pred.ok:
            out_scores.append(pred.ood_score)
        else:
            failed.append((pred.input, f"{pred.error['type']}: {pred.error['message']}"))
    if not out_scores:
        raise ConfigError(f"none of the out-of-distribution inputs ({ood_data}) could be predicted")
    head = classifier.settled.head
    from ..head.ood import describe_method

    report = ood_report(id_scores, out_scores, threshold=head.ood_threshold)
    return {"score": describe_method(head.ood_method, classifier.activation), "data": str(ood_data), **report}


def collect_logits(classifier, data: LabelledData, *, on_progress=None, return_ood: bool = False) -> tuple:
    """Raw logits [M, C] (float32) and targets of the M images that were predicted, and the failures.

    Fitting needs the logits of the fit split at once; float32 halves what is held.
    ``return_ood``: also the M rows' out-of-distribution scores (a fourth item).
    """
    if classifier.calibration is not None or classifier.settled.head.temperature != 1.0:
        raise ConfigError(
            "calibrate fits on the model's raw logits: load it without a calibration or temperature "
            "(drop --calibration / --temperature)"
        )
    keep = np.zeros(len(data), dtype=bool)
    rows, failed, scores = [], [], []
    for i, (pred, _) in enumerate(_labelled_predictions(classifier, data, on_progress)):
        if pred.ok:
            keep[i] = True
            rows.append(np.asarray(pred.logits, dtype=np.float32))
            scores.append(pred.ood_score)
        else:
            failed.append((pred.input, f"{pred.error['type']}: {pred.error['message']}"))
    if not rows:
        raise ConfigError(
            f"none of the {len(data)} images could be predicted (first error: {failed[0][1] if failed else '-'}); "
            "nothing to calibrate"
        )
    targets = data.target_array()[keep]
    if return_ood:
        return np.stack(rows), targets, failed, np.asarray(scores, dtype=np.float64)
    return np.stack(rows), targets, failed
