"""The HTTP outside of the sandbox Zendesk's API: authentication and OAuth scopes, rate
limits and their headers, protocol faults, request counting, and Zendesk's 404 envelope
for unknown endpoints and wrong methods."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox
from connector_pipeline.sandbox.zendesk_state import ZendeskSandboxConfig

API = settings.ZENDESK_API_PREFIX
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")
_JOB_ID_SEGMENT = re.compile(r"(/job_statuses)/(?!show_many)[^/]+")


def endpoint_key(method: str, path: str) -> str:
    """`GET /organizations/{id}` style name for counting calls by endpoint."""
    path = path.removeprefix(API).removesuffix(".json")
    path = _JOB_ID_SEGMENT.sub(r"\1/{id}", path)
    return f"{method.upper()} {_NUMERIC_SEGMENT.sub('/{id}', path)}"


_ADMIN_ONLY = (f"{API}/incremental/", f"{API}/organizations/search")
_UNAUTHORIZED = {"error": "Couldn't authenticate you"}
_FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account owner of "
    "this help desk for further help.",
}
_ACCOUNT_LIMIT_TEXT = "Number of allowed API requests per minute exceeded"
_INCREMENTAL_LIMIT = {
    "error": "APIRateLimitExceeded",
    "description": "Number of allowed incremental export API requests per minute exceeded",
}


def _scope_allows(scope: str, method: str, path: str) -> bool:
    granted = set(scope.split())
    need = "read" if method in ("GET", "HEAD") else "write"
    resource = path[len(API) :].strip("/").split("/")[0]
    if resource == "incremental":
        resource = "tickets"
    return need in granted or f"{resource}:{need}" in granted


class ApiGate:
    """Auth, rate limits, protocol faults and rate-limit headers for `/api/v2/`; strips the
    optional `.json` suffix so routes are declared once."""

    def __init__(self, app: ASGIApp, sandbox: ZendeskSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.endswith(".json"):
            path = path[: -len(".json")]
            scope = dict(scope, path=path, raw_path=path.encode())
        fault = (scope.get("state") or {}).get("fault")
        if fault:
            await _send(send, *_protocol_fault(fault, self.sandbox.config))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        role, granted = self.sandbox.role_for(headers.get("authorization", ""))
        if role is None:
            await _send(send, 401, _json(_UNAUTHORIZED), {"WWW-Authenticate": 'Basic realm="Web"'})
            return
        method = scope["method"]
        scope = dict(scope, state={**(scope.get("state") or {}), "zendesk_role": role})
        forbidden = role != "admin" and path.startswith(_ADMIN_ONLY)
        if forbidden or (granted is not None and not _scope_allows(granted, method, path)):
            await _send(send, 403, _json(_FORBIDDEN), {})
            return
        incremental = path.startswith(f"{API}/incremental/")
        allowed, wait_s = self.sandbox.state.take_rate_limit(incremental)
        if not allowed:
            await _send(send, *_rate_limited(incremental, wait_s, self.sandbox.config))
            return
        extra = self.sandbox.state.rate_headers()
        extra["x-request-id"] = str(uuid.uuid4())
        extra["x-zendesk-request-id"] = extra["x-request-id"]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.encode(), v.encode()) for k, v in extra.items()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestCounter:
    """Outermost: counts every protocol request by endpoint and every status sent, faults
    included, so tests see exactly what a client did."""

    def __init__(self, app: ASGIApp, sandbox: ZendeskSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        state = self.sandbox.state
        with state.lock:
            state.requests[endpoint_key(scope["method"], scope["path"])] += 1

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                with state.lock:
                    state.statuses[str(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    content_type = "application/json; charset=utf-8"
    if body[:1] not in (b"{", b"["):
        content_type = "text/plain; charset=utf-8"
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _rate_limited(
    incremental: bool, wait_s: float, config: ZendeskSandboxConfig
) -> tuple[int, bytes, dict[str, str]]:
    retry = {"Retry-After": str(max(math.ceil(wait_s), 1))}
    if incremental:
        return 429, _json(_INCREMENTAL_LIMIT), retry
    variant = config.rate_limit_body
    if variant == "json":
        body = {"error": "APIRateLimitExceeded", "description": _ACCOUNT_LIMIT_TEXT}
        return 429, _json(body), retry
    if variant == "edge":
        body = {
            "detail": "Rate limited by Zendesk edge protection",
            "status": "429",
            "title": "Automated response",
        }
        return 429, _json(body), retry
    if variant == "plain_bare":
        return 429, _ACCOUNT_LIMIT_TEXT.encode(), {}
    return 429, _ACCOUNT_LIMIT_TEXT.encode(), retry


def _protocol_fault(kind: str, config: ZendeskSandboxConfig) -> tuple[int, bytes, dict[str, str]]:
    retry = {"Retry-After": str(config.fault_retry_after_s)}
    table: dict[str, tuple[int, bytes, dict[str, str]]] = {
        "rate_limit_json": (
            429,
            _json({"error": "APIRateLimitExceeded", "description": _ACCOUNT_LIMIT_TEXT}),
            retry,
        ),
        "rate_limit_plain": (429, _ACCOUNT_LIMIT_TEXT.encode(), retry),
        "rate_limit_no_retry_after": (429, _ACCOUNT_LIMIT_TEXT.encode(), {}),
        "rate_limit_edge": (
            429,
            _json(
                {
                    "detail": "Rate limited by Zendesk edge protection",
                    "status": "429",
                    "title": "Automated response",
                }
            ),
            {},
        ),
        "rate_limit_update": (
            429,
            _json(
                {"errors": [{"code": "TooManyRequests", "title": "Too many requests to update"}]}
            ),
            retry,
        ),
        "incremental_rate_limit": (429, _json(_INCREMENTAL_LIMIT), retry),
        "conflict": (
            409,
            _json({"error": "Conflict", "description": "A conflict occurred. Try again."}),
            {},
        ),
        "unavailable": (503, b"Service Unavailable", retry),
        "forbidden": (403, _json(_FORBIDDEN), {}),
        "unauthorized": (401, _json(_UNAUTHORIZED), {}),
    }
    return table.get(kind, (500, b"sandbox: unknown protocol fault " + kind.encode(), {}))
