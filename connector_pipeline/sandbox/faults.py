"""Fault injection shared by the sandbox services.

A `FaultInjector` decides, per request, whether to misbehave: by probability (`rate` over
`kinds`) or by a scripted sequence consumed in order (`"ok"` lets one request through).
Transport-level faults are carried out by `FaultMiddleware`; protocol faults that only the
service can produce (an Intacct malformed-XML body, a forced session invalidation) are
handed to the app in `scope["state"]["fault"]` for it to act on.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Faults the middleware performs itself.
HTTP_FAULTS = {"http_500": 500, "http_502": 502, "http_503": 503, "http_524": 524}
DEFAULT_KINDS = ("http_500", "http_502", "http_503", "reset", "html")
SANDBOX_PREFIX = "/_sandbox"

_HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b'<body><div class="cf-error-details"><h1>Bad gateway</h1>'
    b"<p>The web server reported a bad gateway error.</p></div></body></html>"
)


@dataclass
class FaultInjector:
    rate: float = 0.0
    kinds: tuple[str, ...] = DEFAULT_KINDS
    latency_ms: float = 0.0
    slow_ms: float = 1500.0
    seed: int | None = None
    script: deque[str] = field(default_factory=deque)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def configure(
        self,
        *,
        rate: float | None = None,
        kinds: Iterable[str] | None = None,
        latency_ms: float | None = None,
        slow_ms: float | None = None,
        script: Iterable[str] | None = None,
        seed: int | None = None,
    ) -> None:
        with self._lock:
            if rate is not None:
                self.rate = rate
            if kinds is not None:
                self.kinds = tuple(kinds)
            if latency_ms is not None:
                self.latency_ms = latency_ms
            if slow_ms is not None:
                self.slow_ms = slow_ms
            if script is not None:
                self.script = deque(script)
            if seed is not None:
                self._random = random.Random(seed)

    def next_fault(self) -> str | None:
        """The fault for the next protocol request, or None."""
        with self._lock:
            if self.script:
                kind = self.script.popleft()
                return None if kind == "ok" else kind
            if self.rate > 0 and self.kinds and self._random.random() < self.rate:
                return self._random.choice(self.kinds)
            return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rate": self.rate,
                "kinds": list(self.kinds),
                "latency_ms": self.latency_ms,
                "script_remaining": list(self.script),
                "injected": dict(self.injected),
            }

    def count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1


class FaultMiddleware:
    """ASGI middleware: latency on every protocol call, then the injector's fault, if any.
    Requests under `/_sandbox/` are never faulted or delayed."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SANDBOX_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.injector.latency_ms:
            await asyncio.sleep(self.injector.latency_ms / 1000)
        fault = self.injector.next_fault()
        if fault is None:
            await self.app(scope, receive, send)
            return
        self.injector.count(fault)
        if fault in HTTP_FAULTS:
            await _drain(receive)
            await _plain(send, HTTP_FAULTS[fault], b"upstream error", b"text/plain")
        elif fault == "html":
            await _drain(receive)
            await _plain(send, 502, _HTML_ERROR_PAGE, b"text/html; charset=UTF-8")
        elif fault == "reset":
            await _drain(receive)
            await _reset(send)
        elif fault == "slow":
            await asyncio.sleep(self.injector.slow_ms / 1000)
            await self.app(scope, receive, send)
        else:
            # A protocol fault: the service itself knows how to produce it.
            scope.setdefault("state", {})["fault"] = fault
            await self.app(scope, receive, send)


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"


async def _plain(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _ConnectionReset(Exception):
    """Raised after a partial response so the server drops the connection mid-body."""


async def _reset(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/xml"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b"<?xml version=", "more_body": True})
    raise _ConnectionReset("sandbox fault: connection reset")


class FaultSettings(BaseModel):
    rate: float | None = None
    kinds: list[str] | None = None
    latency_ms: float | None = None
    slow_ms: float | None = None
    script: list[str] | None = None
    seed: int | None = None


def fault_router(injector: FaultInjector) -> APIRouter:
    """`GET/POST /_sandbox/faults`: read or change fault injection at run time."""
    router = APIRouter(prefix=SANDBOX_PREFIX)

    @router.get("/faults")
    def get_faults() -> dict[str, Any]:
        return injector.snapshot()

    @router.post("/faults")
    def set_faults(body: FaultSettings) -> dict[str, Any]:
        injector.configure(**body.model_dump(exclude_none=True))
        return injector.snapshot()

    return router
