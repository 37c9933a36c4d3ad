"""A faithful local Zendesk Support API, as an ASGI app (FastAPI + uvicorn).

It speaks the real paths under `/api/v2/` (with or without `.json`), checks API-token and
OAuth bearer auth, enforces the account limit of a plan and 10 per minute on incremental
exports, runs bulk jobs asynchronously, and sends signed webhook deliveries for ticket
changes made through the scenario API under `/_sandbox/`. Semantics it copies are cited in
reference/zendesk-api.md; where Zendesk's behaviour is unconfirmed the choice is noted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from connector_pipeline import settings
from connector_pipeline.sandbox.faults import FaultInjector, FaultMiddleware, fault_router
from connector_pipeline.sandbox.zendesk_seed import SeedRequest, seed
from connector_pipeline.sandbox.zendesk_state import (
    SandboxInvalid,
    SandboxState,
    ZendeskSandboxConfig,
    decode_cursor,
    encode_cursor,
    not_found,
    too_many_values,
)
from connector_pipeline.sandbox.zendesk_webhooks import WebhookDispatcher, ticket_events
from connector_pipeline.zendesk.client import endpoint_key

__all__ = ["ZendeskSandbox", "ZendeskSandboxConfig", "create_app", "sandbox_env"]

API = settings.ZENDESK_API_PREFIX
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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


@dataclass
class OAuthGrant:
    client_id: str
    scope: str
    expires: float
    redirect_uri: str = ""
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@dataclass
class ZendeskSandbox:
    """Everything an in-process test may want to reach: `app.state.sandbox`."""

    config: ZendeskSandboxConfig
    state: SandboxState
    webhooks: WebhookDispatcher
    faults: FaultInjector
    codes: dict[str, OAuthGrant] = field(default_factory=dict)
    access_tokens: dict[str, OAuthGrant] = field(default_factory=dict)
    refresh_tokens: dict[str, OAuthGrant] = field(default_factory=dict)

    def on_ticket_event(self, action: str, ticket: dict[str, Any], changes: list[Any]) -> None:
        for envelope in ticket_events(self.config, action, ticket, changes):
            self.webhooks.enqueue(envelope)

    def reset(self) -> None:
        self.state.reset()
        self.webhooks.reset()
        self.codes.clear()
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    def close(self) -> None:
        self.webhooks.close()

    # --- auth ---

    def role_for(self, authorization: str) -> tuple[str | None, str | None]:
        """(role, scope) for an Authorization header; role None means 401."""
        kind, _, credential = authorization.partition(" ")
        if kind.lower() == "basic":
            try:
                user, _, token = base64.b64decode(credential).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, None
            email, _, suffix = user.partition("/")
            if suffix != "token":
                return None, None
            if (email, token) == (self.config.email, self.config.api_token):
                return "admin", None
            if (email, token) == (self.config.agent_email, self.config.agent_api_token):
                return "agent", None
            return None, None
        if kind.lower() == "bearer":
            grant = self.access_tokens.get(credential.strip())
            if grant is None or grant.expires < time.time():
                return None, None
            return "admin", grant.scope
        return None, None


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


# --- helpers for handlers ---


def _csv(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v != ""]


def _int_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise not_found() from exc


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SandboxInvalid(
            400, {"error": "InvalidJSON", "description": "Request body is not valid JSON"}
        ) from exc
    if not isinstance(data, dict):
        raise SandboxInvalid(400, {"error": "InvalidJSON", "description": "Expected an object"})
    return data


def _cursor_page(
    items: list[dict[str, Any]], request: Request, key: str, path: str
) -> dict[str, Any]:
    """Cursor pagination by id (`page[size]`, `page[after]`, `page[before]`), or offset
    pagination when no `page[size]` is given (the legacy default)."""
    params = request.query_params
    base = f"{request.base_url}api/v2/{path}.json"
    if "page[size]" not in params:
        per_page = min(int(params.get("per_page", 100)), 100)
        page = max(int(params.get("page", 1)), 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(items)
        return {
            key: chunk,
            "next_page": f"{base}?page={page + 1}&per_page={per_page}" if more else None,
            "previous_page": f"{base}?page={page - 1}&per_page={per_page}" if page > 1 else None,
            "count": len(items),
        }
    size = min(max(int(params["page[size]"]), 1), 100)
    ids = [item["id"] for item in items]
    if "page[after]" in params:
        after = decode_cursor(params["page[after]"])[1]
        chunk = [item for item in items if item["id"] > after][:size]
    elif "page[before]" in params:
        before = decode_cursor(params["page[before]"])[1]
        chunk = [item for item in items if item["id"] < before][-size:]
    else:
        chunk = items[:size]
    has_more = bool(chunk) and chunk[-1]["id"] != (ids[-1] if ids else None)
    after_cursor = encode_cursor(0.0, chunk[-1]["id"]) if chunk else None
    before_cursor = encode_cursor(0.0, chunk[0]["id"]) if chunk else None

    def link(direction: str, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return f"{base}?{urlencode({f'page[{direction}]': cursor, 'page[size]': size})}"

    return {
        key: chunk,
        "meta": {
            "has_more": has_more,
            "after_cursor": after_cursor,
            "before_cursor": before_cursor,
        },
        "links": {"prev": link("before", before_cursor), "next": link("after", after_cursor)},
    }


# --- routers ---


def _api_router(sandbox: ZendeskSandbox) -> APIRouter:
    state = sandbox.state
    router = APIRouter(prefix=API)

    @router.get("/organizations")
    def list_organizations(request: Request) -> dict[str, Any]:
        return _cursor_page(state.organization_list(), request, "organizations", "organizations")

    @router.post("/organizations", status_code=201)
    async def create_organization(request: Request) -> JSONResponse:
        body = await _body(request)
        org = state.create_organization(body.get("organization") or {})
        location = f"{request.base_url}api/v2/organizations/{org['id']}.json"
        return JSONResponse({"organization": org}, status_code=201, headers={"Location": location})

    @router.get("/organizations/show_many")
    def show_many_organizations(ids: str | None = None, external_ids: str | None = None) -> dict:
        id_list, ext_list = _csv(ids), _csv(external_ids)
        if len(id_list) > settings.ZENDESK_MAX_BATCH or len(ext_list) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()
        try:
            found = state.organizations_by(ids=[int(i) for i in id_list], external_ids=ext_list)
        except ValueError as exc:
            raise not_found() from exc
        return {"organizations": found}

    @router.get("/organizations/search")
    def search_organizations(external_id: str | None = None, name: str | None = None) -> dict:
        if (external_id is None) == (name is None):
            raise SandboxInvalid(
                400,
                {
                    "error": "InvalidParameter",
                    "description": "Provide exactly one of external_id or name",
                },
            )
        found = state.search_organizations(external_id=external_id, name=name)
        return {
            "organizations": found,
            "next_page": None,
            "previous_page": None,
            "count": len(found),
        }

    @router.post("/organizations/create_or_update")
    async def create_or_update(request: Request) -> JSONResponse:
        body = await _body(request)
        org, created = state.create_or_update_organization(body.get("organization") or {})
        return JSONResponse({"organization": org}, status_code=201 if created else 200)

    @router.post("/organizations/create_many")
    async def create_many(request: Request) -> dict[str, Any]:
        body = await _body(request)
        return {"job_status": state.create_many(list(body.get("organizations") or []))}

    @router.put("/organizations/update_many")
    async def update_many(
        request: Request, ids: str | None = None, external_ids: str | None = None
    ) -> dict[str, Any]:
        body = await _body(request)
        if ids is not None or external_ids is not None:
            changes = dict(body.get("organization") or {})
            job = state.update_many_same(_csv(ids), _csv(external_ids), changes)
        else:
            job = state.update_many(list(body.get("organizations") or []))
        return {"job_status": job}

    @router.delete("/organizations/destroy_many")
    def destroy_many(ids: str | None = None, external_ids: str | None = None) -> dict[str, Any]:
        return {"job_status": state.destroy_many(_csv(ids), _csv(external_ids))}

    @router.get("/organizations/{org_id}")
    def show_organization(org_id: str) -> dict[str, Any]:
        found = state.organizations_by(ids=[_int_id(org_id)])
        if not found:
            raise not_found()
        return {"organization": found[0]}

    @router.put("/organizations/{org_id}")
    async def update_organization(org_id: str, request: Request) -> dict[str, Any]:
        body = await _body(request)
        org = state.update_organization(_int_id(org_id), body.get("organization") or {})
        return {"organization": org}

    @router.delete("/organizations/{org_id}", status_code=204)
    def delete_organization(org_id: str) -> Response:
        state.delete_organization(_int_id(org_id))
        return Response(status_code=204)

    @router.get("/job_statuses/show_many")
    def show_many_jobs(ids: str | None = None) -> dict[str, Any]:
        wanted = _csv(ids)
        if len(wanted) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()
        with state.lock:
            views = [state.job_view(job_id) for job_id in wanted if job_id in state.jobs]
        return {"job_statuses": views}

    @router.get("/job_statuses/{job_id}")
    def show_job(job_id: str) -> dict[str, Any]:
        return {"job_status": state.job_view(job_id)}

    @router.get("/tickets")
    def list_tickets(request: Request) -> dict[str, Any]:
        tickets = [_public_ticket(t) for t in state.visible_tickets()]
        return _cursor_page(tickets, request, "tickets", "tickets")

    @router.post("/tickets", status_code=201)
    async def create_ticket(request: Request) -> JSONResponse:
        body = await _body(request)
        ticket = state.create_ticket(body.get("ticket") or {}, scenario=False)
        return JSONResponse({"ticket": _public_ticket(ticket)}, status_code=201)

    @router.get("/tickets/show_many")
    def show_many_tickets(ids: str | None = None) -> dict[str, Any]:
        wanted = _csv(ids)
        if len(wanted) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()
        with state.lock:
            found = [
                _public_ticket(state.tickets[int(i)])
                for i in wanted
                if i.isdigit()
                and int(i) in state.tickets
                and state.tickets[int(i)]["status"] != "deleted"
            ]
        return {"tickets": found}

    @router.get("/tickets/{ticket_id}")
    def show_ticket(ticket_id: str) -> dict[str, Any]:
        with state.lock:
            ticket = state.tickets.get(_int_id(ticket_id))
            if ticket is None or ticket["status"] == "deleted":
                raise not_found()
            return {"ticket": _public_ticket(ticket)}

    @router.put("/tickets/{ticket_id}")
    async def update_ticket(ticket_id: str, request: Request) -> dict[str, Any]:
        body = await _body(request)
        ticket = state.update_ticket(_int_id(ticket_id), body.get("ticket") or {}, scenario=False)
        return {"ticket": _public_ticket(ticket)}

    @router.get("/incremental/tickets/cursor")
    def export_cursor(
        start_time: int | None = None, cursor: str | None = None, per_page: int = 1000
    ) -> dict[str, Any]:
        if start_time is None and cursor is None:
            raise SandboxInvalid(
                400, {"error": "InvalidValue", "description": "start_time or cursor is required"}
            )
        per_page = min(max(per_page, 1), settings.ZENDESK_EXPORT_PER_PAGE)
        return state.export_cursor(start_time=start_time, cursor=cursor, per_page=per_page)

    @router.get("/incremental/tickets")
    def export_time_based(start_time: int, per_page: int = 1000) -> dict[str, Any]:
        per_page = min(max(per_page, 1), settings.ZENDESK_EXPORT_PER_PAGE)
        return state.export_time_based(start_time=start_time, per_page=per_page)

    @router.get("/webhooks/{webhook_id}/signing_secret")
    def signing_secret(webhook_id: str) -> dict[str, Any]:
        if webhook_id != sandbox.config.webhook_id:
            raise not_found()
        return {"signing_secret": {"secret": sandbox.config.webhook_secret, "algorithm": "SHA256"}}

    @router.get("/webhooks/{webhook_id}/invocations")
    def invocations(webhook_id: str) -> dict[str, Any]:
        if webhook_id != sandbox.config.webhook_id:
            raise not_found()
        items = [
            {
                "id": inv["id"],
                "status": inv["status"],
                "status_code": inv["log"][-1]["status_code"] if inv["log"] else None,
                "latest_completed_at": inv["log"][-1]["completed_at"] if inv["log"] else None,
            }
            for inv in sandbox.webhooks.invocations()
        ]
        return {"invocations": items, "meta": {"has_more": False, "after_cursor": None}}

    @router.get("/webhooks/{webhook_id}/invocations/{invocation_id}/attempts")
    def attempts(webhook_id: str, invocation_id: str) -> dict[str, Any]:
        invocation = sandbox.webhooks.invocation(invocation_id)
        if webhook_id != sandbox.config.webhook_id or invocation is None:
            raise not_found()
        out = []
        for entry in reversed(invocation.log):
            status = "success" if entry["ok"] else "failed"
            if not entry["ok"] and entry["attempt"] >= sandbox.config.webhook_max_attempts:
                status = "terminated"
            out.append(
                {
                    "id": webhook_id,
                    "invocation_id": invocation_id,
                    "status_code": entry["status_code"],
                    "status": status,
                    "request": {
                        "headers": _pairs(entry["request_headers"]),
                        "payload": entry["payload"],
                    },
                    "response": {
                        "headers": _pairs(entry["response_headers"]),
                        "payload": entry["response_body"],
                    },
                    "completed_at": entry["completed_at"],
                }
            )
        return {"attempts": out}

    return router


def _pairs(headers: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in headers.items()]


def _public_ticket(ticket: dict[str, Any]) -> dict[str, Any]:
    """Outside the incremental export, tickets carry no `generated_timestamp` and (as
    recorded from the list endpoint) no `fields` alias of `custom_fields`."""
    return {k: v for k, v in ticket.items() if k not in ("generated_timestamp", "fields")}


def _oauth_router(sandbox: ZendeskSandbox) -> APIRouter:
    router = APIRouter()
    config = sandbox.config

    def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status)

    @router.get(settings.ZENDESK_OAUTH_AUTHORIZE_PATH, response_model=None)
    def authorize(request: Request) -> Response:
        """Approves at once, as the sandbox admin, and redirects back with the code."""
        params = request.query_params
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in config.oauth_clients:
            return oauth_error("invalid_client", "Unknown client_id")
        if params.get("response_type") != "code" or not redirect_uri:
            return oauth_error("invalid_request", "response_type=code and redirect_uri required")
        method = params.get("code_challenge_method")
        if config.oauth_clients[client_id] is None and not params.get("code_challenge"):
            return oauth_error("invalid_request", "public clients must use PKCE")
        if method not in (None, "S256"):
            return oauth_error("invalid_request", "code_challenge_method must be S256")
        code = secrets.token_urlsafe(24)
        sandbox.codes[code] = OAuthGrant(
            client_id,
            params.get("scope", settings.ZENDESK_OAUTH_DEFAULT_SCOPE),
            time.time() + settings.ZENDESK_OAUTH_CODE_TTL_S,
            redirect_uri,
            params.get("code_challenge"),
            method,
        )
        query = {"code": code}
        if "state" in params:
            query["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)

    @router.post(settings.ZENDESK_OAUTH_TOKEN_PATH, response_model=None)
    async def token(request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await _body(request)
        else:
            body = dict(await request.form())
        client_id = str(body.get("client_id", ""))
        if client_id not in config.oauth_clients:
            return oauth_error("invalid_client", "Unknown client_id", 401)
        expected_secret = config.oauth_clients[client_id]
        if expected_secret is not None and body.get("client_secret") != expected_secret:
            return oauth_error("invalid_client", "Client authentication failed", 401)
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            grant = sandbox.codes.pop(str(body.get("code", "")), None)
            if grant is None or grant.expires < time.time() or grant.client_id != client_id:
                return oauth_error("invalid_grant", "The authorization code is invalid or expired")
            if body.get("redirect_uri") != grant.redirect_uri:
                return oauth_error("invalid_grant", "redirect_uri does not match")
            if grant.code_challenge is not None:
                verifier = str(body.get("code_verifier", ""))
                digest = hashlib.sha256(verifier.encode()).digest()
                challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
                if not secrets.compare_digest(challenge, grant.code_challenge):
                    return oauth_error("invalid_grant", "code_verifier does not match")
            scope = grant.scope
        elif grant_type == "refresh_token":
            old = sandbox.refresh_tokens.pop(str(body.get("refresh_token", "")), None)
            if old is None or old.expires < time.time() or old.client_id != client_id:
                return oauth_error("invalid_grant", "The refresh token is invalid or expired")
            scope = old.scope
        else:
            return oauth_error("unsupported_grant_type", f"grant_type {grant_type!r}")
        access_ttl = float(body.get("expires_in") or config.oauth_access_ttl_s)
        refresh_ttl = float(body.get("refresh_token_expires_in") or config.oauth_refresh_ttl_s)
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        now = time.time()
        sandbox.access_tokens[access] = OAuthGrant(client_id, scope, now + access_ttl)
        sandbox.refresh_tokens[refresh] = OAuthGrant(client_id, scope, now + refresh_ttl)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "bearer",
                "scope": scope,
                "expires_in": int(access_ttl),
                "refresh_token": refresh,
                "refresh_token_expires_in": int(refresh_ttl),
            }
        )

    return router


class WebhookTarget(BaseModel):
    url: str | None = None
    secret: str | None = None


class Redeliver(BaseModel):
    count: int = 1
    new_invocation: bool = False


def _scenario_router(sandbox: ZendeskSandbox) -> APIRouter:
    state = sandbox.state
    router = APIRouter(prefix="/_sandbox")

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        data = state.stats()
        data["webhook_deliveries"] = len(sandbox.webhooks.deliveries())
        data["webhook_pending"] = sandbox.webhooks.pending()
        data["faults"] = sandbox.faults.snapshot()
        return data

    @router.get("/organizations")
    def organizations() -> list[dict[str, Any]]:
        return state.organization_list()

    @router.get("/tickets")
    def tickets() -> list[dict[str, Any]]:
        return state.all_tickets()

    @router.post("/seed")
    def seed_data(body: SeedRequest) -> dict[str, Any]:
        return seed(state, body)

    @router.post("/tickets", status_code=201)
    async def create_ticket(request: Request) -> JSONResponse:
        return JSONResponse(state.create_ticket(await _body(request), scenario=True), 201)

    @router.patch("/tickets/{ticket_id}")
    async def update_ticket(ticket_id: int, request: Request) -> dict[str, Any]:
        return state.update_ticket(ticket_id, await _body(request), scenario=True)

    @router.post("/tickets/{ticket_id}/solve")
    def solve_ticket(ticket_id: int) -> dict[str, Any]:
        return state.update_ticket(ticket_id, {"status": "solved"}, scenario=True)

    @router.delete("/tickets/{ticket_id}")
    def delete_ticket(ticket_id: int) -> dict[str, Any]:
        return state.delete_ticket(ticket_id)

    @router.post("/webhook")
    def configure_webhook(body: WebhookTarget) -> dict[str, Any]:
        sandbox.webhooks.configure(body.url, body.secret)
        return {"url": sandbox.config.webhook_url, "webhook_id": sandbox.config.webhook_id}

    @router.post("/webhook/redeliver")
    def redeliver(body: Redeliver) -> dict[str, Any]:
        ids = sandbox.webhooks.redeliver(body.count, new_invocation=body.new_invocation)
        return {"invocation_ids": ids}

    @router.get("/webhook/deliveries")
    def deliveries() -> list[dict[str, Any]]:
        return sandbox.webhooks.deliveries()

    @router.post("/config")
    async def configure(request: Request) -> dict[str, Any]:
        state.reconfigure(await _body(request))
        return {k: v for k, v in vars(sandbox.config).items() if "secret" not in k}

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        sandbox.reset()
        return {"reset": True}

    return router


def create_app(config: ZendeskSandboxConfig | None = None) -> FastAPI:
    config = config or ZendeskSandboxConfig()
    state = SandboxState(config)
    injector = FaultInjector(
        rate=config.fault_rate,
        kinds=config.fault_kinds,
        latency_ms=config.latency_ms,
        seed=config.seed,
    )
    sandbox = ZendeskSandbox(config, state, WebhookDispatcher(config), injector)
    state.on_ticket_event = sandbox.on_ticket_event

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        sandbox.close()

    app = FastAPI(title="ml-connector sandbox Zendesk", lifespan=lifespan)
    app.state.sandbox = sandbox

    @app.exception_handler(SandboxInvalid)
    async def sandbox_error(_: Request, exc: SandboxInvalid) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    app.include_router(_api_router(sandbox))
    app.include_router(_oauth_router(sandbox))
    app.include_router(_scenario_router(sandbox))
    app.include_router(fault_router(injector))
    # Added innermost first: the counter sees everything, faults come before auth.
    app.add_middleware(ApiGate, sandbox=sandbox)
    app.add_middleware(FaultMiddleware, injector=injector)
    app.add_middleware(RequestCounter, sandbox=sandbox)
    return app


def sandbox_env(base_url: str, config: ZendeskSandboxConfig | None = None) -> dict[str, str]:
    """Environment variables that point ml-connector at a running sandbox."""
    config = config or ZendeskSandboxConfig()
    return {
        settings.ENV_ZENDESK_BASE_URL: base_url.rstrip("/"),
        settings.ENV_ZENDESK_ALLOW_CUSTOM_BASE_URL: "1",
        settings.ENV_ZENDESK_EMAIL: config.email,
        settings.ENV_ZENDESK_API_TOKEN: config.api_token,
        settings.ENV_ZENDESK_WEBHOOK_SECRETS: config.webhook_secret,
    }
