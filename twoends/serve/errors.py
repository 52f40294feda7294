"""HTTP errors of the server, and how any error becomes a status code and a JSON body.

Every error response has the body ``{"error": {"type": str, "message": str}}``
(for ``/v1/predict`` input errors it is the whole Prediction error row, which
has that same ``error`` field). The type names the problem; the message says
what was expected, what was got and how to fix it.

``HTTPError`` is also a Starlette ``HTTPException``: FastAPI lets those through
when they are raised while it reads a request body (the body size limit is
enforced there), where it would turn anything else into a bare 400.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ConfigError, ImageTooLargeError, InputError, OutputError, TwoEndsError

__all__ = [
    "HTTPError",
    "BodyTooLarge",
    "Overloaded",
    "AnswerTimeout",
    "ServerStopping",
    "UnsupportedMediaType",
    "error_body",
    "status_for",
]


class HTTPError(TwoEndsError, StarletteHTTPException):
    """A request the server answers with ``status`` and ``{"error": {"type": kind, "message": ...}}``."""

    status: int = 400
    kind: str = "BadRequest"

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None, headers=None):
        status = status or type(self).status
        StarletteHTTPException.__init__(self, status_code=status, detail=message, headers=headers)
        self.kind = kind or type(self).kind
        self.message = message

    def __str__(self) -> str:
        return self.message


class BodyTooLarge(HTTPError):
    status, kind = 413, "PayloadTooLarge"


class UnsupportedMediaType(HTTPError):
    status, kind = 415, "UnsupportedMediaType"


class AnswerTimeout(HTTPError):
    status, kind = 504, "Timeout"


class Overloaded(HTTPError):
    status, kind = 503, "Overloaded"

    def __init__(self, message: str):
        super().__init__(message, headers={"Retry-After": "1"})


class ServerStopping(HTTPError):
    status, kind = 503, "Unavailable"


def status_for(exc: BaseException) -> int:
    """The HTTP status for an error raised while answering a request."""
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, (ConfigError, OutputError)):
        return 422  # a parameter out of range, or outputs that cannot honestly be an answer
    return 500


def error_body(exc: BaseException) -> dict:
    """``{"error": {"type", "message"}}`` for any exception."""
    if isinstance(exc, HTTPError):
        return {"error": {"type": exc.kind, "message": exc.message}}
    if isinstance(exc, StarletteHTTPException):
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
        return {"error": {"type": phrase.replace(" ", "").replace("-", ""), "message": str(exc.detail)}}
    if isinstance(exc, TwoEndsError):
        return {"error": {"type": type(exc).__name__, "message": str(exc)}}
    return {"error": {"type": "InternalError", "message": f"the server failed on this request ({type(exc).__name__}); see its log"}}
