"""twoends: run any pretrained classifier the right way.

The two ends of every model, owned: the model's own preprocessing in, honest
probabilities out (logits, softmax/sigmoid, temperature, top-k with names,
calibration, uncertainty), for any framework.

``import twoends`` loads the core only (the head, preprocessing, the Classifier).
The consumers load on first use, through module attributes (PEP 562):
``twoends.check`` (the doctor), ``twoends.calibrate``, ``twoends.diagnose`` and
``twoends.models`` are there after ``import twoends`` without being imported by it.
"""

import importlib

from ._version import __version__
from .api import load, wrap
from .classifier import Classifier
from .ensemble import Ensemble, ensemble
from .errors import (
    AudioTooLongError,
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
from .options import RunOptions
from .prediction import ClassScore, Prediction, PredictionBatch, Segment
from .preprocess import AudioClip, AudioSpec, ImageSpec

# name -> (module, attribute or None for the module itself): imported when first asked for
_LAZY = {
    "check": ("twoends.diagnose", "check"),
    "calibrate": ("twoends.calibrate", None),
    "diagnose": ("twoends.diagnose", None),
    "models": ("twoends.models", None),
}

__all__ = [
    "AudioClip",
    "AudioSpec",
    "AudioTooLongError",
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
    "Segment",
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
]


def __getattr__(name: str):
    if name not in _LAZY:
        # the module __getattr__ protocol (PEP 562): anything else is a plain missing attribute
        raise AttributeError(f"module 'twoends' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # the next look-up is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
