"""Running the app under uvicorn with connection limits: header and idle timeouts, bounded headers.

uvicorn drops idle keep-alive connections (``timeout_keep_alive``) and bounds
an incomplete request head (``h11_max_incomplete_event_size``), but it waits
forever for a head that trickles in a byte at a time. ``HeaderTimeoutH11``
closes a connection whose request head has not arrived within
``header_timeout_s`` of its first byte (or of the connection opening), so
half-open and slow-header connections cannot pile up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .service import ServeConfig

__all__ = ["HeaderTimeoutH11", "MAX_HEAD_BYTES", "uvicorn_config"]

MAX_HEAD_BYTES = 64 * 1024  # a request head larger than this is refused by h11 (431 comes from the Guard below it)


class HeaderTimeoutH11(H11Protocol):
    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        # no request yet, or the last one answered and a new head has begun
        return self.cycle is None or (self.cycle.response_complete and self.timeout_keep_alive_task is None)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.close()  # nothing useful can be answered to half a request head


def uvicorn_config(app: Any, host: str, port: int, config: ServeConfig, **kw: Any) -> uvicorn.Config:
    """A uvicorn.Config for ``app`` with the limits of ``config``."""
    protocol = type("HeaderTimeoutH11", (HeaderTimeoutH11,), {"header_timeout_s": float(config.header_timeout_s)})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        lifespan="on",
        timeout_keep_alive=max(1, round(config.keep_alive_s)),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_graceful_shutdown=kw.pop("timeout_graceful_shutdown", 5),
        **kw,
    )
