"""HTTP reads that a hostile or broken server cannot stretch, shared by both API clients.

- An overall deadline per request. httpx timeouts apply to each socket operation, so a
  server trickling one byte every few seconds never trips them; here every socket
  operation is given at most the time left before the request's deadline (a network
  backend that httpcore calls for each read, write and connect), and none starts after it.
- A cap on the *decompressed* body. httpx decodes gzip without an output limit, so a
  small body can inflate to gigabytes; the body is read raw and inflated here with
  `max_length`, so memory stays bounded by the cap whatever the compression ratio.
- `Retry-After` read defensively: negative, `inf`, NaN, garbage and far-future dates all
  come back as a number of seconds in `[RETRY_AFTER_MIN_S, inf]` or None.
"""

from __future__ import annotations

import email.utils
import math
import ssl
import time
import typing
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import httpcore
import httpx

from connector_pipeline import settings

_DEADLINE: ContextVar[float | None] = ContextVar("ml_connector_http_deadline", default=None)


class GuardedHttpError(Exception):
    """A response was cut off by one of the guards in this module."""


class DeadlineExceeded(GuardedHttpError):
    """The request ran past its overall deadline."""


class BodyTooLarge(GuardedHttpError):
    """The body (after decompression) is larger than the cap."""


class UnsupportedEncoding(GuardedHttpError):
    """The server used a Content-Encoding that was not offered."""


@contextmanager
def request_deadline(seconds: float) -> Iterator[float]:
    """Every socket operation inside the block ends by `seconds` from now (an enclosing,
    earlier deadline still wins). Yields the monotonic deadline."""
    deadline = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("the request's overall deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout))
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._backend.connect_tcp(host, port, _bounded(timeout), local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._backend.connect_unix_socket(path, _bounded(timeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def deadline_transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections honour `request_deadline`.

    httpx has no public way to choose httpcore's network backend, so the pool the transport
    built is replaced by an identical one with the deadline backend (same defaults as
    `httpx.HTTPTransport()`: TLS verification on, HTTP/1.1, default pool limits)."""
    transport = httpx.HTTPTransport()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_DeadlineBackend(),
    )
    return transport


# --- bounded, decompressing body read -------------------------------------------------

ACCEPT_ENCODING = "gzip, deflate"


class _Inflater:
    """zlib with an output limit per call; `deflate` may come with or without its zlib
    header (servers disagree), so the first chunk decides."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._first = True
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(wbits)

    def feed(self, data: bytes, limit: int) -> bytes:
        try:
            out = self._inflater.decompress(data, limit)
        except zlib.error:
            if not (self._first and self._encoding == "deflate"):
                raise
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._inflater.decompress(data, limit)
        self._first = False
        return out

    def flush(self, limit: int) -> bytes:
        # `unconsumed_tail` holds input that did not fit under the last limit: over the cap.
        if self._inflater.unconsumed_tail:
            raise BodyTooLarge("body inflates past the cap")
        return self._inflater.flush(limit)


def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body of a streamed `response`, decompressed, refusing more than `max_bytes`
    (raw or decompressed) with BodyTooLarge before buffering past the cap."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    inflater: _Inflater | None = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = _Inflater(encoding)
    elif encoding not in ("", "identity"):
        raise UnsupportedEncoding(f"unexpected Content-Encoding {encoding!r}")
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the {max_bytes}-byte cap")
    body = bytearray()
    raw_size = 0
    for raw in response.iter_raw():
        raw_size += len(raw)
        if raw_size > max_bytes:
            raise BodyTooLarge(f"body exceeds the {max_bytes}-byte cap")
        try:
            body += inflater.feed(raw, max_bytes - len(body) + 1) if inflater else raw
        except zlib.error as exc:
            raise UnsupportedEncoding(f"body is not valid {encoding}: {exc}") from None
        if len(body) > max_bytes:
            raise BodyTooLarge(f"body inflates past the {max_bytes}-byte cap")
    if inflater is not None:
        body += inflater.flush(max_bytes - len(body) + 1)
        if len(body) > max_bytes:
            raise BodyTooLarge(f"body inflates past the {max_bytes}-byte cap")
    return bytes(body)


# --- Retry-After ----------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or HTTP date), at least
    `RETRY_AFTER_MIN_S` so a negative or past value never causes back-to-back retries;
    `inf` and far-future dates come back as large numbers (callers compare them with
    `RETRY_AFTER_MAX_S`). None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(settings.RETRY_AFTER_MIN_S, seconds)
