"""Errors of the server, and how any error becomes a status code, a gRPC code and a JSON body.

Two body shapes, one per protocol:

* the Open Inference Protocol (``/v2``, and every route outside ``/v1``):
  ``{"error": "<message>", "type": "<kind>"}`` -- the protocol's string, which
  Triton's and KServe's clients print as is, and the kind beside it;
* ``/v1``: ``{"error": {"type": ..., "message": ...}}``, the error field of the
  Prediction schema (an input error there is the whole Prediction error row).

The kind names the problem; the message says what was expected, what was got
and how to fix it.

``HTTPError`` is also a Starlette ``HTTPException``: FastAPI lets those through
when they are raised while it reads a request body (the body size limit is
enforced there), where it would turn anything else into a bare 400.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AudioTooLongError, ConfigError, ImageTooLargeError, InputError, OutputError, TwoEndsError

__all__ = [
    "HTTPError",
    "BodyTooLarge",
    "Overloaded",
    "AnswerTimeout",
    "ServerStopping",
    "UnsupportedMediaType",
    "GRPC_CODES",
    "error_body",
    "kind_and_message",
    "nested_for",
    "status_for",
    "validation_error",
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
    """A body, or what it declares (inputs, JSON elements, inflated size), over a limit: refused before the work."""

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
    if isinstance(exc, (ImageTooLargeError, AudioTooLongError)):
        return 413
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, (ConfigError, OutputError)):
        return 422  # a parameter out of range, or outputs that cannot honestly be an answer
    return 500


#: HTTP status -> the gRPC status code name the same error gets (as Triton maps them)
GRPC_CODES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def kind_and_message(exc: BaseException) -> tuple[str, str]:
    """(kind, message) of any exception; an unexpected one says only that the server failed."""
    if isinstance(exc, HTTPError):
        return exc.kind, exc.message
    if isinstance(exc, StarletteHTTPException):
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
        return phrase.replace(" ", "").replace("-", ""), str(exc.detail)
    if isinstance(exc, TwoEndsError):
        return type(exc).__name__, str(exc)
    return "InternalError", f"the server failed on this request ({type(exc).__name__}); see its log"


def error_body(exc: BaseException, nested: bool = True) -> dict:
    """The JSON error body: ``{"error": {"type", "message"}}`` (nested, /v1) or ``{"error": msg, "type": kind}``."""
    kind, message = kind_and_message(exc)
    if nested:
        return {"error": {"type": kind, "message": message}}
    return {"error": message, "type": kind}


def nested_for(path: str) -> bool:
    """Whether a route answers errors in the /v1 (Prediction) shape rather than the protocol's string."""
    return path == "/v1" or path.startswith("/v1/")


def validation_error(errors: list) -> HTTPError:
    """A pydantic / FastAPI validation failure as one error: 400 for bad JSON, 422 naming up to five fields."""
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        return HTTPError(f"the body is not valid JSON ({bad_json.get('msg')}); expected a JSON object", kind="BadJSON")
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ())) or "body"
        parts.append(f"{where}: {e.get('msg')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return HTTPError("; ".join(parts) + more, status=422, kind="ValidationError")
