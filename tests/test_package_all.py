"""The exact public names of twoends and of each public subpackage: an addition or a removal is a decision.

Change a list here only together with the README (and say so in the change). Every name listed must
resolve: the package's lazy attributes (``twoends.check``) included.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "twoends": [
        "AudioClip",
        "AudioSpec",
        "AudioTooLongError",
        "Segment",  # audio (issue 16; README: Audio)
        "CalibrationError",
        "ClassScore",
        "Classifier",
        "ConfigError",
        "DecodeError",
        "Ensemble",
        "Head",
        "ImageSpec",
        "ImageTooLargeError",
        "InputError",
        "LabelError",
        "LabelMap",
        "ModelError",
        "OutputError",
        "Prediction",
        "PredictionBatch",
        "RunOptions",
        "TwoEndsError",
        "__version__",
        "check",
        "ensemble",
        "load",
        "log_softmax",
        "logsumexp",
        "sigmoid",
        "softmax",
        "topk",
        "wrap",
    ],
    "twoends.head": [
        "Head",
        "TopK",
        "apply_temperature",
        "binary_entropy",
        "entropy",
        "log_sigmoid",
        "log_softmax",
        "logsumexp",
        "margin",
        "max_probability",
        "sigmoid",
        "softmax",
        "topk",
    ],
    "twoends.preprocess": [
        "AUDIO_EXTENSIONS",
        "AudioClip",
        "AudioPlan",
        "AudioSpec",
        "DEFAULT_MAX_SECONDS",
        "decode_audio",  # audio
        "DEFAULT_MAX_PIXELS",
        "IMAGENET_MEAN",
        "IMAGENET_STD",
        "IMAGE_EXTENSIONS",
        "ImageInput",
        "ImagePlan",
        "ImageSpec",
        "InputPlan",
        "InputSpec",
        "Item",
        "Limits",
        "TextPlan",
        "TextSpec",
        "decode_image",
        "is_single",
        "iter_items",
        "resolve_input_spec",
        "resolve_spec",
        "to_rgb",
    ],
    "twoends.backends": ["Backend", "ModelInfo", "backend_for", "check_options", "register_adapter"],
    "twoends.models": [
        "ModelEntry",
        "available",
        "fingerprint",
        "imagenet_labels",
        "load_backend",
        "register",
        "register_prefix",
    ],
    "twoends.calibrate": [
        "Calibration",
        "CalibrationMetrics",
        "CalibrationReport",
        "ClassThresholds",
        "ConformalThreshold",
        "Fitted",
        "LabelledData",
        "ReliabilityBins",
        "TemperatureScaler",
        "accuracy",
        "apply_thresholds",
        "brier_score",
        "calibration_report",
        "conformal_scores",
        "evaluate",
        "expected_calibration_error",
        "fit_calibration",
        "fit_conformal",
        "fit_temperature",
        "fit_thresholds",
        "fit_vector_scaling",
        "load_calibration",
        "load_labelled",
        "maximum_calibration_error",
        "negative_log_likelihood",
        "nll_at_temperature",
        "plot_reliability",
        "prediction_sets",
        "reliability_bins",
        "set_members",
    ],
    "twoends.diagnose": [
        "CHECKS",
        "Finding",
        "Findings",
        "KNOWN_ANSWERS",
        "SEVERITIES",
        "activation",
        "batch_shape",
        "channel_order",
        "check",
        "input_size",
        "known_answer",
        "labels",
        "normalization",
        "over_confidence",
        "probabilities_as_logits",
        "softmax_axis",
        "training_mode",
    ],
    "twoends.serve": ["DynamicBatcher", "ServeConfig", "Service", "create_app", "rehead"],
    "twoends.distributed": [],
    "twoends.distributed.ray": ["INPUT_SCHEMA", "output_schema", "predict_dataset", "predict_paths", "to_prediction"],
}

NEEDS = {"twoends.serve": "fastapi", "twoends.distributed.ray": "ray"}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_all_is_exactly_the_public_api(name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    assert sorted(exported) == sorted(PUBLIC[name]), (
        f"{name}.__all__ changed: added {sorted(set(exported) - set(PUBLIC[name]))}, "
        f"removed {sorted(set(PUBLIC[name]) - set(exported))}"
    )
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what is not there: {missing}"
