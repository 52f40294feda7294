"""Calibration: honest probabilities from held-out labels.

Metrics (accuracy, NLL, Brier, ECE, MCE, reliability bins), temperature and
vector scaling, split-conformal prediction sets and multi-label thresholds.
Pure NumPy; SciPy and matplotlib are imported only by the functions that use them.
"""

from .binning import ReliabilityBins
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
from .conformal import ConformalThreshold, conformal_scores, fit_conformal, prediction_sets, set_members
from .reliability import plot_reliability
from .thresholds import ClassThresholds, apply_thresholds, fit_thresholds
from .temperature import TemperatureScaler, fit_temperature, fit_vector_scaling, nll_at_temperature

__all__ = [
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
    "TemperatureScaler",
    "fit_temperature",
    "fit_vector_scaling",
    "nll_at_temperature",
    "ConformalThreshold",
    "conformal_scores",
    "fit_conformal",
    "prediction_sets",
    "set_members",
    "ClassThresholds",
    "apply_thresholds",
    "fit_thresholds",
    "plot_reliability",
]
