"""twoends: run any pretrained classifier the right way.

The two ends of every model, owned: the model's own preprocessing in, honest
probabilities out (logits, softmax/sigmoid, temperature, top-k with names,
calibration, uncertainty), for any framework.
"""

from .errors import (
    CalibrationError,
    ConfigError,
    DecodeError,
    ImageTooLargeError,
    InputError,
    LabelError,
    ModelError,
    OutputError,
    TwoEndsError,
)
from .head import Head, log_softmax, logsumexp, sigmoid, softmax, topk
from .labels import LabelMap
from .prediction import ClassScore, Prediction, PredictionBatch

__version__ = "0.1.0"

__all__ = [
    "CalibrationError",
    "ClassScore",
    "ConfigError",
    "DecodeError",
    "Head",
    "ImageTooLargeError",
    "InputError",
    "LabelError",
    "LabelMap",
    "ModelError",
    "OutputError",
    "Prediction",
    "PredictionBatch",
    "TwoEndsError",
    "__version__",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "topk",
]
