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
from .api import load, wrap
from .classifier import Classifier
from .diagnose import check
from .head import Head, log_softmax, logsumexp, sigmoid, softmax, topk
from .labels import LabelMap
from .options import RunOptions
from .prediction import ClassScore, Prediction, PredictionBatch
from .preprocess import ImageSpec

__version__ = "0.1.0"

__all__ = [
    "CalibrationError",
    "ClassScore",
    "Classifier",
    "ConfigError",
    "DecodeError",
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
    "load",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "topk",
    "wrap",
]
