"""Confidence bins: the data behind ECE, MCE and the reliability diagram.

Conventions (the same as netcal and ``numpy.histogram``):

* ``binning="width"``: ``n_bins`` equal-width bins on [0, 1], edges
  ``linspace(0, 1, n_bins + 1)``.
* ``binning="mass"`` (adaptive, equal mass): edges at the ``linspace(0, 1,
  n_bins + 1)`` quantiles of the confidences (NumPy's default linear
  interpolation), with the outer edges set to 0 and 1, as in netcal's
  ``equal_intervals=False``. Tied confidences can make edges coincide: such
  zero-width bins stay empty (netcal raises "smallest edge difference is
  numerically 0" there instead).
* Every bin is closed on the left and open on the right, ``[e_k, e_k+1)``,
  except the last, which is closed, ``[e_n-1, 1]``: a confidence of exactly
  1.0 falls in the last bin. (torchmetrics instead puts 1.0 in an extra
  bin of its own; its ECE/MCE therefore differ from ours and netcal's only when
  some confidence is exactly 1.0, which float32 softmax does produce for
  saturated logits.)
* Empty bins have NaN mean confidence and accuracy, weight 0 in ECE and are
  skipped by MCE.

The additive state is three sums per bin (count, sum of confidences, number
correct), so equal-width bins can be accumulated over a stream of any length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ReliabilityBins", "width_edges", "mass_edges", "bin_sums"]


def width_edges(n_bins: int) -> np.ndarray:
    """``n_bins + 1`` equal-width edges on [0, 1]."""
    return np.linspace(0.0, 1.0, n_bins + 1)


def mass_edges(confidences: np.ndarray, n_bins: int) -> np.ndarray:
    """``n_bins + 1`` equal-mass edges: quantiles of the confidences, outer edges pinned to 0 and 1."""
    edges = np.quantile(np.asarray(confidences, dtype=np.float64), np.linspace(0.0, 1.0, n_bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def bin_index(confidences: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each confidence: [e_k, e_k+1) with the last bin closed at 1."""
    n_bins = len(edges) - 1
    # side="right" makes a value equal to an edge start that edge's bin (left-closed)
    idx = np.searchsorted(edges, confidences, side="right") - 1
    return np.clip(idx, 0, n_bins - 1)


def bin_sums(confidences: np.ndarray, correct: np.ndarray, edges: np.ndarray):
    """(count, sum of confidences, number correct) per bin, as float64 arrays."""
    n_bins = len(edges) - 1
    idx = bin_index(confidences, edges)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(idx, weights=confidences, minlength=n_bins)
    correct_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    return count, conf_sum, correct_sum


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin sums of a reliability diagram; every derived number comes from these.

    ``edges`` has ``n_bins + 1`` entries; ``count``, ``conf_sum`` and
    ``correct_sum`` have ``n_bins``. ``binning`` is ``"width"`` or ``"mass"``.
    """

    edges: np.ndarray
    count: np.ndarray
    conf_sum: np.ndarray
    correct_sum: np.ndarray
    binning: str = "width"

    @property
    def n_bins(self) -> int:
        return len(self.count)

    @property
    def n(self) -> int:
        return int(self.count.sum())

    @property
    def mean_confidence(self) -> np.ndarray:
        """Mean top-1 confidence per bin (NaN for an empty bin)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.conf_sum / self.count, np.nan)

    @property
    def accuracy(self) -> np.ndarray:
        """Fraction of top-1 predictions that are correct, per bin (NaN for an empty bin)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.correct_sum / self.count, np.nan)

    @property
    def ece(self) -> float:
        """sum_k (n_k / N) |acc_k - conf_k|, computed as sum_k |correct_k - conf_sum_k| / N."""
        return float(np.sum(np.abs(self.correct_sum - self.conf_sum)) / self.count.sum())

    @property
    def mce(self) -> float:
        """max over non-empty bins of |acc_k - conf_k|."""
        gap = np.abs(self.accuracy - self.mean_confidence)
        return float(np.nanmax(gap))

    def to_dict(self) -> dict:
        """Plain lists and floats (NaN for empty bins becomes None), for JSON."""

        def clean(a):
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "binning": self.binning,
            "edges": [float(e) for e in self.edges],
            "count": [int(c) for c in self.count],
            "mean_confidence": clean(self.mean_confidence),
            "accuracy": clean(self.accuracy),
            "ece": self.ece,
            "mce": self.mce,
        }
