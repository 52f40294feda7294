"""The request guard: header and body size limits and per-request metrics, as plain ASGI.

Headers over ``MAX_HEADER_BYTES`` in all or more than ``MAX_HEADERS`` of them
are refused with a 431 (the HTTP layer itself accepts far more).

A declared ``Content-Length`` over the limit is refused before any byte of the
body is read; a body that arrives without one (chunked) is counted as it
streams and refused when it passes the limit. Either way the answer is a 413
with the JSON error body. Every response is counted by route template (never
the raw path: a fuzzer must not create a metric series per URL) and status.

A request still running when the server stops past its grace period is
cancelled by uvicorn, which would answer a plain-text 500; the guard answers
it first with the protocol's JSON error (503, retry elsewhere).
"""

from __future__ import annotations

import asyncio
import json
import time

from .errors import BodyTooLarge, HTTPError, ServerStopping, error_body, nested_for
from .metrics import ServerMetrics

__all__ = ["Guard", "MAX_HEADERS", "MAX_HEADER_BYTES"]

MAX_HEADERS = 100  # as Apache's LimitRequestFields
MAX_HEADER_BYTES = 32 * 1024  # as nginx's large_client_header_buffers (4 x 8k)


class Guard:
    def __init__(self, app, *, max_body: int, metrics: ServerMetrics):
        self.app, self.max_body, self.metrics = app, max_body, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what is recorded if the app fails before answering
        answered = False
        nested = nested_for(scope.get("path", ""))

        async def send_status(message):
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            await send(message)

        try:
            headers = scope.get("headers", ())
            size = sum(len(k) + len(v) + 4 for k, v in headers)
            if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
                await _send_error(
                    send_status,
                    HTTPError(
                        f"the request has {len(headers)} headers, {size} bytes in all; the limits are {MAX_HEADERS} "
                        f"headers and {MAX_HEADER_BYTES} bytes: send fewer or smaller headers (cookies?)",
                        status=431,
                        kind="HeadersTooLarge",
                    ),
                    nested,
                )
                return
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                await _send_error(
                    send_status, BodyTooLarge(self._too_large(f"{declared} bytes (Content-Length)")), nested
                )
                return
            await self.app(scope, self._limited(receive), send_status)
        except asyncio.CancelledError:
            if not answered:  # the server is stopping past its grace period
                await _send_error(
                    send_status,
                    ServerStopping("the server stopped before this request was answered; retry (on another replica)"),
                    nested,
                )
            raise
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.inc({"route": label, "method": scope.get("method", ""), "status": str(status)})
            self.metrics.latency.observe(time.perf_counter() - started, {"route": label})

    def _limited(self, receive):
        seen = 0

        async def receive_limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self._too_large(f"more than {self.max_body} bytes"))
            return message

        return receive_limited

    def _too_large(self, got: str) -> str:
        limit_mb = self.max_body / (1024 * 1024)
        return (
            f"the request body is {got}, over the limit of {self.max_body} bytes ({limit_mb:g} MB); "
            "send a smaller image (resize it: the model sees a few hundred pixels a side), "
            "or start the server with a larger --max-body-mb"
        )


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP layer rejects malformed lengths before we get here
    return None


async def _send_error(send, exc: HTTPError, nested: bool) -> None:
    body = json.dumps(error_body(exc, nested=nested)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
