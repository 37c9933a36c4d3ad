"""A faithful local Zendesk Support API, as an ASGI app (FastAPI + uvicorn).

It speaks the real paths under `/api/v2/` (with or without `.json`), checks API-token and
OAuth bearer auth, enforces the account limit of a plan and 10 per minute on incremental
exports, runs bulk jobs asynchronously, and sends signed webhook deliveries for ticket
changes made through the scenario API under `/_sandbox/`. Semantics it copies are cited in
reference/zendesk-api.md; where Zendesk's behaviour is unconfirmed the choice is noted.

Layout: `zendesk_gate` (auth, limits, faults, counting), `zendesk_routes/` (one router
per resource), `zendesk_state` (what it holds), `zendesk_jobs` and `zendesk_rate`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from connector_pipeline import settings
from connector_pipeline.sandbox.faults import FaultInjector, FaultMiddleware, fault_router
from connector_pipeline.sandbox.zendesk_errors import SandboxInvalid, invalid_endpoint
from connector_pipeline.sandbox.zendesk_gate import ApiGate, RequestCounter
from connector_pipeline.sandbox.zendesk_routes import (
    jobs,
    oauth,
    organization_fields,
    organizations,
    scenario,
    tickets,
    users,
    webhooks,
)
from connector_pipeline.sandbox.zendesk_service import ZendeskSandbox
from connector_pipeline.sandbox.zendesk_state import SandboxState, ZendeskSandboxConfig
from connector_pipeline.sandbox.zendesk_webhooks import WebhookDispatcher

__all__ = ["ZendeskSandbox", "ZendeskSandboxConfig", "create_app", "sandbox_env"]

API = settings.ZENDESK_API_PREFIX


def sandbox_json(exc: SandboxInvalid) -> JSONResponse:
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown paths and wrong methods answer in Zendesk's envelope, never FastAPI's
        # {"detail": ...} (fixture error_404_invalid_endpoint.json).
        if request.url.path.startswith(API) and exc.status_code in (404, 405):
            return sandbox_json(invalid_endpoint())
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith(API):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        names = ", ".join(str(e["loc"][-1]) for e in exc.errors())
        body = {"error": "InvalidValue", "description": f"Invalid or missing parameter: {names}"}
        return JSONResponse(body, status_code=400)

    for module in (organizations, organization_fields, jobs, tickets, users, webhooks):
        app.include_router(module.router(sandbox))
    app.include_router(oauth.router(sandbox))
    app.include_router(scenario.router(sandbox))
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
