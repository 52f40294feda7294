"""The one exception tree of twoends.

Every error a user can cause is a ``TwoEndsError``; catch that one to catch them all::

    TwoEndsError
    ├── ConfigError        a bad argument or setting (temperature <= 0, unknown activation, ...)
    ├── LabelError         labels that do not match the model's outputs
    ├── InputError         one input that cannot be turned into a model input
    │   ├── DecodeError    corrupt, truncated, empty, non-image or non-audio file
    │   ├── ImageTooLargeError   over the pixel limit (decompression-bomb guard)
    │   └── AudioTooLongError    over the duration limit
    ├── OutputError        model outputs that cannot honestly become an answer (NaN, +inf)
    ├── ModelError         a model that cannot be found, loaded or run
    ├── CalibrationError   a calibration that does not fit the model it is applied to
    └── HTTPError          (twoends.serve.errors) a request the server answers with a status
        ├── BodyTooLarge           413: the body is over the server's limit
        ├── UnsupportedMediaType   415: a Content-Type the endpoint does not read
        ├── AnswerTimeout          504: no answer within the request timeout
        ├── Overloaded             503: the queue is full (Retry-After: 1)
        └── ServerStopping         503: the model worker is not running

Nothing else is raised: tests/test_errors.py parses every module and fails on a
``raise`` of a built-in exception (ValueError, RuntimeError, ...) or an exception
class outside this tree.

Messages say what was expected, what was got, and how to fix it.
``ConfigError``, ``LabelError`` and ``InputError`` are also ``ValueError`` so that
code written against plain Python conventions keeps working.
"""

from __future__ import annotations


class TwoEndsError(Exception):
    """Base class of every error raised by twoends."""


class ConfigError(TwoEndsError, ValueError):
    """A bad argument or setting."""


class LabelError(TwoEndsError, ValueError):
    """Labels that do not match the model's outputs."""


class InputError(TwoEndsError, ValueError):
    """One input that cannot be turned into a model input."""


class DecodeError(InputError):
    """A file or buffer that is not a readable image (or audio clip)."""


class ImageTooLargeError(InputError):
    """An image over the pixel limit."""


class AudioTooLongError(InputError):
    """An audio clip over the duration limit."""


class OutputError(TwoEndsError, ValueError):
    """Model outputs that cannot honestly become an answer (NaN, +inf, every class masked)."""


class ModelError(TwoEndsError):
    """A model that cannot be found, loaded or run."""


class CalibrationError(TwoEndsError, ValueError):
    """A calibration that does not fit the model it is applied to."""


__all__ = [
    "TwoEndsError",
    "ConfigError",
    "LabelError",
    "InputError",
    "DecodeError",
    "ImageTooLargeError",
    "AudioTooLongError",
    "OutputError",
    "ModelError",
    "CalibrationError",
]
