"""Calibration: honest probabilities from held-out labels.

* metrics: accuracy, NLL, Brier, ECE / MCE (equal-width or equal-mass bins),
  reliability bins; one-shot functions and a streaming ``CalibrationMetrics``.
* temperature: temperature scaling and vector scaling fitted by NLL.
* conformal: split-conformal prediction sets (LAC, APS, RAPS).
* thresholds: per-class multi-label thresholds (F1 or a target precision).
* reliability: the reliability diagram as a PNG.

Pure NumPy; SciPy and matplotlib are imported only by the functions that use them.
"""

from .binning import ReliabilityBins
from .calibration import Calibration, load_calibration
from .conformal import ConformalThreshold, conformal_scores, fit_conformal, prediction_sets, set_members
from .data import LabelledData, load_labelled
from .evaluate import evaluate
from .fit import Fitted, fit_calibration
from .metrics import (
    CalibrationMetrics,
    CalibrationReport,
    accuracy,
    brier_score,
    calibration_report,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from .reliability import plot_reliability
from .temperature import TemperatureScaler, fit_temperature, fit_vector_scaling, nll_at_temperature
from .thresholds import ClassThresholds, apply_thresholds, fit_thresholds

__all__ = [
    # metrics
    "CalibrationMetrics",
    "CalibrationReport",
    "ReliabilityBins",
    "accuracy",
    "brier_score",
    "calibration_report",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_bins",
    # temperature / vector scaling
    "TemperatureScaler",
    "fit_temperature",
    "fit_vector_scaling",
    "nll_at_temperature",
    # conformal
    "ConformalThreshold",
    "conformal_scores",
    "fit_conformal",
    "prediction_sets",
    "set_members",
    # multi-label thresholds
    "ClassThresholds",
    "apply_thresholds",
    "fit_thresholds",
    # plotting
    "plot_reliability",
    # what users fit, save, load and apply
    "Calibration",
    "Fitted",
    "LabelledData",
    "evaluate",
    "fit_calibration",
    "load_calibration",
    "load_labelled",
]
