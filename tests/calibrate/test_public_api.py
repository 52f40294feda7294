"""The public names of twoends.calibrate: every one exists, and nothing else is exported by accident."""

from __future__ import annotations

import twoends.calibrate as calibrate

EXPECTED = {
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
}


def test_all_is_exactly_the_public_api():
    assert set(calibrate.__all__) == EXPECTED
    assert len(calibrate.__all__) == len(set(calibrate.__all__))
    for name in calibrate.__all__:
        assert getattr(calibrate, name).__doc__, f"{name} has no docstring"
