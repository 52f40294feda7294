"""Accuracy, NLL, Brier score, ECE and MCE: one-shot functions and a streaming class.

Both forms run the same three private steps (the torchmetrics pattern), so a
stream of batches gives the same numbers as one call on everything:

* ``_validate`` checks one batch and turns it into per-sample quantities;
* ``_update`` adds them into a small additive state;
* ``_compute`` turns the state into a :class:`CalibrationReport`.

Inputs are single-label: ``scores`` [N, C] (logits by default, or softmax
probabilities with ``from_logits=False``) and integer ``labels`` [N].

Conventions:

* top-k: a sample is a hit when fewer than k classes rank above its label;
  ties are broken towards the lower class index, so k = 1 agrees exactly with
  ``argmax`` (which is also what decides "correct" for ECE).
* NLL: mean over samples of -log p(label), natural log. A probability of
  exactly 0 on the label gives +inf: the model called the truth impossible.
* Brier score: sum over classes of (p_c - onehot_c)^2, mean over samples; in
  [0, 2]. This is the original multiclass definition (Brier 1950) and
  scikit-learn's ``brier_score_loss`` for 3+ classes; for 2 classes
  scikit-learn halves it by default (``scale_by_half="auto"``) and we do not.
* ECE / MCE use the top-1 confidence and the bins of :mod:`.binning`
  (``[e_k, e_k+1)``, last bin closed), matching ``netcal.metrics.ECE`` / ``MCE``
  and torchmetrics' ``multiclass_calibration_error`` with ``norm="l1"`` /
  ``"max"`` except for confidences of exactly 1.0 (see :mod:`.binning`).

Memory of the streaming class: equal-width bins keep 3 sums per bin, nothing
per sample; equal-mass bins need every confidence to place the edges, so they
keep 2 numbers per sample (the top-1 confidence and whether it was correct),
never the logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CalibrationError, ConfigError
from ..head.activations import log_softmax
from . import _checks
from .binning import ReliabilityBins, bin_sums, mass_edges, width_edges

__all__ = [
    "CalibrationReport",
    "CalibrationMetrics",
    "accuracy",
    "negative_log_likelihood",
    "brier_score",
    "expected_calibration_error",
    "maximum_calibration_error",
    "reliability_bins",
    "calibration_report",
]

BINNINGS = ("width", "mass")


@dataclass(frozen=True)
class CalibrationReport:
    """Every metric over all samples seen. ``top_k`` maps k to top-k accuracy."""

    n: int
    n_classes: int
    accuracy: float
    top_k: dict
    nll: float
    brier: float
    ece: float
    mce: float
    bins: ReliabilityBins

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "n_classes": self.n_classes,
            "accuracy": self.accuracy,
            "top_k": {str(k): v for k, v in self.top_k.items()},
            "nll": self.nll,
            "brier": self.brier,
            "ece": self.ece,
            "mce": self.mce,
            "bins": self.bins.to_dict(),
        }


@dataclass
class _Batch:
    """Per-sample quantities of one validated batch: all the state ever needs."""

    rank: np.ndarray  # [N] number of classes ranked above the label (0 = top-1 correct)
    confidence: np.ndarray  # [N] top-1 probability
    nll: np.ndarray  # [N] -log p(label)
    brier: np.ndarray  # [N] sum_c (p_c - onehot_c)^2
    n_classes: int


@dataclass
class _State:
    n_bins: int
    binning: str
    ks: tuple
    n_classes: int | None = None
    n: int = 0
    nll_sum: float = 0.0
    brier_sum: float = 0.0
    hits: np.ndarray | None = None  # [len(ks)] top-k hit counts
    count: np.ndarray | None = None  # equal-width bins: per-bin sums
    conf_sum: np.ndarray | None = None
    correct_sum: np.ndarray | None = None
    confidences: list = field(default_factory=list)  # equal-mass bins: 2 numbers per sample
    corrects: list = field(default_factory=list)


def _check_config(n_bins, binning, ks) -> tuple:
    _checks.check_positive_int(n_bins, "n_bins")
    _checks.check_choice(binning, "binning", BINNINGS)
    ks = tuple(ks)
    for k in ks:
        _checks.check_positive_int(k, "top_k entry")
    return tuple(sorted(set(int(k) for k in ks)))


def _new_state(n_bins: int, binning: str, ks) -> _State:
    ks = _check_config(n_bins, binning, ks)
    state = _State(n_bins=int(n_bins), binning=binning, ks=ks, hits=np.zeros(len(ks), dtype=np.int64))
    if binning == "width":
        state.count = np.zeros(n_bins)
        state.conf_sum = np.zeros(n_bins)
        state.correct_sum = np.zeros(n_bins)
    return state


def _validate(scores, labels, *, from_logits: bool) -> _Batch:
    """Check one batch and reduce it to per-sample rank, confidence, NLL and Brier terms."""
    if from_logits:
        s = _checks.check_logits(scores, "logits")
        _checks.warn_if_probabilities(s)
        logp = log_softmax(s)
        p = np.exp(logp)
    else:
        s = _checks.check_probs(scores, "probs")
        p = s
        with np.errstate(divide="ignore"):
            logp = np.log(p)
    n, c = s.shape
    y = _checks.check_labels(labels, n, c)
    rows = np.arange(n)
    s_y = s[rows, y][:, None]
    cols = np.arange(c)[None, :]
    # ties go to the lower class index, so rank == 0 is exactly argmax == label
    rank = np.sum(s > s_y, axis=1) + np.sum((s == s_y) & (cols < y[:, None]), axis=1)
    sq = p**2
    # sum_c (p_c - 1[c=y])^2 = sum_c p_c^2 - 2 p_y + 1, without building the one-hot
    brier = sq.sum(axis=1) - 2.0 * p[rows, y] + 1.0
    return _Batch(rank=rank, confidence=p.max(axis=1), nll=-logp[rows, y], brier=brier, n_classes=c)


def _update(state: _State, batch: _Batch) -> None:
    if state.n_classes is None:
        state.n_classes = batch.n_classes
    elif batch.n_classes != state.n_classes:
        raise CalibrationError(
            f"expected {state.n_classes} classes as in the earlier batches, got {batch.n_classes}; "
            "every batch must come from the same model head"
        )
    correct = batch.rank == 0
    state.n += len(batch.rank)
    state.nll_sum += float(batch.nll.sum())
    state.brier_sum += float(batch.brier.sum())
    state.hits += np.array([np.sum(batch.rank < k) for k in state.ks], dtype=np.int64)
    if state.binning == "width":
        count, conf_sum, correct_sum = bin_sums(batch.confidence, correct, width_edges(state.n_bins))
        state.count += count
        state.conf_sum += conf_sum
        state.correct_sum += correct_sum
    else:
        state.confidences.append(batch.confidence.copy())
        state.corrects.append(correct.copy())


def _compute(state: _State) -> CalibrationReport:
    if state.n == 0:
        raise CalibrationError(
            "expected at least one batch before compute(), got none: call update(scores, labels) first"
        )
    if state.binning == "width":
        edges = width_edges(state.n_bins)
        count, conf_sum, correct_sum = state.count.copy(), state.conf_sum.copy(), state.correct_sum.copy()
    else:
        conf = np.concatenate(state.confidences)
        edges = mass_edges(conf, state.n_bins)
        count, conf_sum, correct_sum = bin_sums(conf, np.concatenate(state.corrects), edges)
    bins = ReliabilityBins(edges, count, conf_sum, correct_sum, state.binning)
    # ks beyond the number of classes are trivially 1.0 and are left out rather than reported
    top_k = {k: float(h) / state.n for k, h in zip(state.ks, state.hits) if k <= state.n_classes}
    return CalibrationReport(
        n=state.n,
        n_classes=state.n_classes,
        accuracy=float(correct_sum.sum()) / state.n,
        top_k=top_k,
        nll=state.nll_sum / state.n,
        brier=state.brier_sum / state.n,
        ece=bins.ece,
        mce=bins.mce,
        bins=bins,
    )


class CalibrationMetrics:
    """Accumulate every metric over a stream of batches without keeping the logits.

    >>> m = CalibrationMetrics(n_bins=15, binning="width")
    >>> for logits, labels in batches:          # doctest: +SKIP
    ...     m.update(logits, labels)
    >>> report = m.compute()                    # doctest: +SKIP

    ``top_k`` values larger than the number of classes are left out of the
    report. See the module docstring for conventions and memory use.
    """

    def __init__(self, n_bins: int = 15, binning: str = "width", top_k=(1, 5), from_logits: bool = True):
        self.from_logits = bool(from_logits)
        self._args = (n_bins, binning, tuple(top_k))
        self._state = _new_state(*self._args)

    def update(self, scores, labels) -> None:
        _update(self._state, _validate(scores, labels, from_logits=self.from_logits))

    def compute(self) -> CalibrationReport:
        return _compute(self._state)

    def reset(self) -> None:
        self._state = _new_state(*self._args)

    @property
    def n(self) -> int:
        return self._state.n


def calibration_report(
    scores, labels, *, n_bins: int = 15, binning: str = "width", top_k=(1, 5), from_logits: bool = True
) -> CalibrationReport:
    """All metrics at once over one array of scores (same steps as :class:`CalibrationMetrics`)."""
    state = _new_state(n_bins, binning, top_k)
    _update(state, _validate(scores, labels, from_logits=from_logits))
    return _compute(state)


def accuracy(scores, labels, *, k: int = 1, from_logits: bool = True) -> float:
    """Top-k accuracy (ties towards the lower class index, so k = 1 is argmax accuracy)."""
    report = calibration_report(scores, labels, top_k=(k,), from_logits=from_logits)
    if k not in report.top_k:
        raise ConfigError(f"expected k <= the number of classes ({report.n_classes}), got k={k}")
    return report.top_k[k]


def negative_log_likelihood(scores, labels, *, from_logits: bool = True) -> float:
    """Mean -log p(label), natural log."""
    return calibration_report(scores, labels, top_k=(1,), from_logits=from_logits).nll


def brier_score(scores, labels, *, from_logits: bool = True) -> float:
    """Mean over samples of sum over classes of (p_c - onehot_c)^2 (range [0, 2], not halved)."""
    return calibration_report(scores, labels, top_k=(1,), from_logits=from_logits).brier


def expected_calibration_error(
    scores, labels, *, n_bins: int = 15, binning: str = "width", from_logits: bool = True
) -> float:
    """Top-1 ECE: sum over bins of (n_k / N) |accuracy_k - mean confidence_k|."""
    return calibration_report(scores, labels, n_bins=n_bins, binning=binning, top_k=(1,), from_logits=from_logits).ece


def maximum_calibration_error(
    scores, labels, *, n_bins: int = 15, binning: str = "width", from_logits: bool = True
) -> float:
    """Top-1 MCE: the largest |accuracy_k - mean confidence_k| over non-empty bins."""
    return calibration_report(scores, labels, n_bins=n_bins, binning=binning, top_k=(1,), from_logits=from_logits).mce


def reliability_bins(
    scores, labels, *, n_bins: int = 15, binning: str = "width", from_logits: bool = True
) -> ReliabilityBins:
    """The per-bin data of a reliability diagram (count, mean confidence, accuracy, edges)."""
    return calibration_report(scores, labels, n_bins=n_bins, binning=binning, top_k=(1,), from_logits=from_logits).bins
