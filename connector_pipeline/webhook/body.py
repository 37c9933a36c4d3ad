"""Read a request body with a size cap enforced while it streams in, and a deadline."""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request


class BodyRejected(Exception):
    """The body cannot be accepted; `status` and `reason` say why."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


async def read_body(request: Request, *, max_bytes: int, timeout_s: float) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `max_bytes` (from
    `Content-Length`, or while counting chunks: nothing past the cap is buffered), and with
    408 when it has not fully arrived within `timeout_s`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyRejected(400, "bad_content_length", "Content-Length is not a number")
        if int(declared) > max_bytes:
            raise BodyRejected(
                413, "too_large", f"body of {int(declared)} bytes exceeds {max_bytes} bytes"
            )
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyRejected(413, "too_large", f"body exceeds {max_bytes} bytes")
                if chunk:
                    chunks.append(chunk)
    except TimeoutError as exc:
        raise BodyRejected(
            408, "body_timeout", f"body not received within {timeout_s:g} s"
        ) from exc
    except ClientDisconnect as exc:
        raise BodyRejected(400, "client_disconnected", "client went away mid-body") from exc
    return b"".join(chunks)
