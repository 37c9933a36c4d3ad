"""uvicorn's httptools protocol with two guards it lacks: a deadline for the request line
and headers, and a cap on their size.

uvicorn's `timeout_keep_alive` only covers the idle time between requests, so a client
that opens a connection and sends its headers a byte at a time (slowloris) would hold a
connection slot for as long as it likes; and `h11_max_incomplete_event_size` does not apply
to the httptools parser. The body has its own deadline in the app (`read_body`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connector_pipeline import settings

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
)
_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"connection: close\r\ncontent-length: 0\r\n\r\n"
)


class _HeadersTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout_s: float = settings.WEBHOOK_HEADER_READ_TIMEOUT_S
    max_header_bytes: int = settings.WEBHOOK_MAX_HEADER_BYTES

    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes: int = 0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._refuse(_TIMEOUT_RESPONSE)

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
            self._disarm_header_timer()
            self._refuse(_TOO_LARGE_RESPONSE)
            # Stops the parser: httptools re-raises it as a parser error, which uvicorn
            # answers with a 400 that `send_400_response` below drops (we answered).
            raise _HeadersTooLarge

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():
            super().send_400_response(msg)

    def _refuse(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def guarded_protocol(
    *, header_timeout_s: float | None = None, max_header_bytes: int | None = None
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with other limits (tests use fractions of a second)."""
    attributes: dict[str, Any] = {}
    if header_timeout_s is not None:
        attributes["header_timeout_s"] = header_timeout_s
    if max_header_bytes is not None:
        attributes["max_header_bytes"] = max_header_bytes
    return type("GuardedHttpToolsProtocolForTests", (GuardedHttpToolsProtocol,), attributes)
