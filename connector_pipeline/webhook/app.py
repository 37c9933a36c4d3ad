"""The Zendesk webhook receiver: verify, then commit to the inbox, then answer.

`POST /webhooks/zendesk` checks the size while the body streams in, verifies the signature
on the raw bytes (any configured secret, for rotation) before parsing anything, commits the
delivery to `webhook_inbox` and only then answers 200. A repeat (same invocation id or
same event id) answers 200 and is not stored again. When the ledger cannot be written the
answer is 503, so Zendesk retries; nothing is lost because nothing was acknowledged.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from connector_pipeline import settings
from connector_pipeline.intacct.webhooks import TriggerConfig
from connector_pipeline.staging.store import InboxEvent, StagingStore, head_revision
from connector_pipeline.webhook.access_log import AccessLogMiddleware, log_fields
from connector_pipeline.webhook.body import BodyRejected, read_body
from connector_pipeline.webhook.counters import DeliveryCounters
from connector_pipeline.webhook.intacct_route import add_intacct_route
from connector_pipeline.webhook.ledger import Ledger, LedgerUnavailable, not_stored_response
from connector_pipeline.zendesk.events import WebhookPayloadError, parse_webhook_payload
from connector_pipeline.zendesk.webhooks import (
    ACCOUNT_ID_HEADER,
    INVOCATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    WebhookVerificationError,
    verify_with_any,
)

log = logging.getLogger(__name__)

JSON_MEDIA_TYPES = ("application/json",)


class DeliveryResponse(BaseModel):
    status: str  # "accepted" or "duplicate"
    inbox_id: int | None = None


class ErrorResponse(BaseModel):
    error: str
    detail: str


class LedgerHealth(BaseModel):
    ok: bool
    dialect: str | None = None
    revision: str | None = None
    error: str | None = None


class HealthResponse(BaseModel):
    status: str  # "ok" or "degraded"
    ledger: LedgerHealth
    secrets_configured: int
    deliveries: dict[str, Any]
    intacct_deliveries: dict[str, Any]
    pid: int


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """`ZENDESK_WEBHOOK_SECRETS`: comma-separated, current first, blanks ignored."""
    raw = (environ if environ is not None else os.environ).get(
        settings.ENV_ZENDESK_WEBHOOK_SECRETS, ""
    )
    return [s.strip() for s in raw.split(",") if s.strip()]


def create_app(
    store: StagingStore | None = None,
    secrets: list[str] | None = None,
    tolerance_s: float | None = settings.WEBHOOK_SIGNATURE_TOLERANCE_S,
    max_body_bytes: int = settings.WEBHOOK_MAX_BODY_BYTES,
    *,
    body_timeout_s: float = settings.WEBHOOK_BODY_READ_TIMEOUT_S,
    ledger_timeout_s: float = settings.WEBHOOK_LEDGER_TIMEOUT_S,
    ledger_url: str | None = None,
    intacct_trigger: TriggerConfig | None = None,
) -> FastAPI:
    """The receiver app. Without `store`, the ledger at `ledger_url` (default
    `STAGING_DATABASE_URL`) is opened at start-up and disposed at shutdown; without
    `secrets`, `ZENDESK_WEBHOOK_SECRETS` is read now. `tolerance_s=None` turns the
    timestamp check off (tests replaying old deliveries). `intacct_trigger` verifies
    Intacct deliveries on `/webhooks/intacct`; without it that route answers 401."""
    signing_secrets = list(secrets) if secrets is not None else secrets_from_env()
    counters = DeliveryCounters()
    ledger = Ledger(
        store=store,
        owns_store=store is None,
        timeout_s=ledger_timeout_s,
    )
    expected_revision = head_revision()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not signing_secrets:
            log.warning("no webhook signing secret configured: every delivery gets 401")
        if ledger.store is None:
            # Opening does not connect; the first write migrates (see Ledger.call).
            ledger.store = StagingStore.open(ledger_url, migrate=False)
        ledger.start()
        try:
            await ledger.call(lambda s: None)
        except LedgerUnavailable as exc:
            log.error("ledger not reachable at start-up (%s); answering 503 until it is", exc)
        # Everything loaded so far (modules, the app, SQLAlchemy's caches) lives as long as
        # the process. Frozen, the collector stops re-scanning it: otherwise each full
        # collection walks ~100,000 objects and stalls every request in flight for ~70 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            ledger.stop()

    app = FastAPI(
        title="ml-connector webhook receiver",
        version="1",
        description=(
            "Receives Zendesk webhook deliveries, verifies their signature and commits them "
            "to the ledger's inbox before answering."
        ),
        lifespan=lifespan,
    )
    app.state.counters = counters
    app.state.intacct_counters = intacct_counters = DeliveryCounters()
    app.state.ledger = ledger
    app.add_middleware(AccessLogMiddleware)
    add_intacct_route(app, ledger, intacct_trigger, intacct_counters, body_timeout_s=body_timeout_s)

    def reject(
        request: Request, status: int, reason: str, detail: str, **headers: str
    ) -> JSONResponse:
        counters.rejected(reason)
        log_fields(request.scope).update(outcome="rejected", reason=reason)
        return JSONResponse(
            {"error": reason, "detail": detail}, status_code=status, headers=headers or None
        )

    @app.post(
        settings.WEBHOOK_PATH,
        response_model=DeliveryResponse,
        summary="Receive one Zendesk webhook delivery",
        responses={
            400: {"model": ErrorResponse, "description": "Body is not a known JSON payload"},
            401: {"model": ErrorResponse, "description": "Missing, stale or wrong signature"},
            408: {"model": ErrorResponse, "description": "Body arrived too slowly"},
            413: {"model": ErrorResponse, "description": "Body larger than the limit"},
            415: {"model": ErrorResponse, "description": "Content-Type is not JSON"},
            503: {"model": ErrorResponse, "description": "Ledger unavailable; retry"},
        },
        openapi_extra=_webhook_openapi(max_body_bytes),
    )
    async def receive_delivery(request: Request) -> JSONResponse:
        fields = log_fields(request.scope)
        headers = request.headers
        invocation_id = headers.get(INVOCATION_ID_HEADER)
        # Clipped: before verification these are whatever the sender chose to send.
        clip = settings.WEBHOOK_MAX_ID_LENGTH
        fields.update(
            invocation_id=invocation_id and invocation_id[:clip],
            webhook_id=(headers.get(WEBHOOK_ID_HEADER) or "")[:clip] or None,
            account_id=(headers.get(ACCOUNT_ID_HEADER) or "")[:clip] or None,
        )
        try:
            body = await read_body(request, max_bytes=max_body_bytes, timeout_s=body_timeout_s)
        except BodyRejected as exc:
            return reject(request, exc.status, exc.reason, str(exc))
        fields["bytes"] = len(body)

        try:
            fields["secret_index"] = verify_with_any(
                signing_secrets,
                body,
                headers.get(TIMESTAMP_HEADER, ""),
                headers.get(SIGNATURE_HEADER, ""),
                tolerance_s=tolerance_s,
            )
        except WebhookVerificationError as exc:
            return reject(request, 401, f"signature_{exc.reason}", str(exc))

        content_type = headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type and media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
            return reject(request, 415, "unsupported_media_type", "Content-Type must be JSON")
        try:
            parsed = parse_webhook_payload(body)
        except WebhookPayloadError as exc:
            return reject(request, 400, "bad_payload", str(exc))
        for name, value in (("invocation id", invocation_id), ("event id", parsed.event_id)):
            if value is not None and len(value) > settings.WEBHOOK_MAX_ID_LENGTH:
                return reject(
                    request, 400, "bad_id", f"{name} longer than {settings.WEBHOOK_MAX_ID_LENGTH}"
                )
        fields.update(
            event_id=parsed.event_id, event_type=parsed.event_type, ticket_id=parsed.ticket_id
        )

        event = InboxEvent(
            body=body,
            headers={k: v for k in settings.WEBHOOK_STORED_HEADERS if (v := headers.get(k))},
            invocation_id=invocation_id or None,
            event_id=parsed.event_id,
            event_type=parsed.event_type[: settings.WEBHOOK_MAX_ID_LENGTH],
            ticket_id=parsed.ticket_id,
        )
        try:
            appended = await ledger.append(event)
        except LedgerUnavailable as exc:
            counters.ledger_error()
            fields.update(outcome="ledger_error", reason=str(exc))
            log.error("inbox write failed: %s", exc)
            return not_stored_response()
        if appended.duplicate:
            counters.duplicate()
            fields["outcome"] = "duplicate"
            return JSONResponse({"status": "duplicate", "inbox_id": None})
        counters.accepted()
        fields.update(outcome="accepted", inbox_id=appended.id)
        return JSONResponse({"status": "accepted", "inbox_id": appended.id})

    @app.get(
        "/healthz",
        response_model=HealthResponse,
        summary="Ledger reachability and delivery counters",
        responses={503: {"model": HealthResponse, "description": "Ledger unavailable"}},
    )
    async def healthz() -> JSONResponse:
        health = LedgerHealth(ok=False)
        try:
            revision = await ledger.call(lambda s: s.current_revision())
            health = LedgerHealth(
                ok=revision == expected_revision,
                dialect=ledger.store.dialect if ledger.store else None,
                revision=revision,
                error=None if revision == expected_revision else "ledger not migrated",
            )
        except LedgerUnavailable as exc:
            health.error = str(exc)
        body = HealthResponse(
            status="ok" if health.ok else "degraded",
            ledger=health,
            secrets_configured=len(signing_secrets),
            deliveries=counters.snapshot(),
            intacct_deliveries=intacct_counters.snapshot(),
            pid=os.getpid(),
        )
        return JSONResponse(body.model_dump(), status_code=200 if health.ok else 503)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Delivery counters of this process, Prometheus text format",
    )
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            counters.prometheus(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and `ml-connector webhook serve` workers."""
    return create_app(intacct_trigger=TriggerConfig.from_env(os.environ))


def _webhook_openapi(max_body_bytes: int) -> dict[str, Any]:
    """Document what the handler reads by hand: the raw body must stay unparsed until the
    signature is checked, so FastAPI cannot declare it as a model parameter."""
    header = {"in": "header", "required": False, "schema": {"type": "string"}}
    return {
        "parameters": [
            {**header, "name": SIGNATURE_HEADER, "description": "base64 HMAC-SHA256"},
            {**header, "name": TIMESTAMP_HEADER, "description": "ISO-8601 UTC"},
            {**header, "name": INVOCATION_ID_HEADER, "description": "idempotency key"},
            {**header, "name": WEBHOOK_ID_HEADER},
            {**header, "name": ACCOUNT_ID_HEADER},
        ],
        "requestBody": {
            "required": True,
            "description": (
                "A Zendesk event-subscribed payload or the ml-connector trigger template "
                f"(docs/webhooks.md), at most {max_body_bytes} bytes."
            ),
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "object",
                                "title": "EventSubscribedPayload",
                                "required": ["type", "id"],
                                "properties": {
                                    "type": {"type": "string", "pattern": "^zen:event-type:"},
                                    "id": {"type": "string"},
                                    "account_id": {"type": "integer"},
                                    "time": {"type": "string"},
                                    "zendesk_event_version": {"type": "string"},
                                    "subject": {"type": "string"},
                                    "detail": {"type": "object"},
                                    "event": {"type": "object"},
                                },
                            },
                            {
                                "type": "object",
                                "title": "TriggerTemplatePayload",
                                "required": ["ml_connector", "ticket"],
                                "properties": {
                                    "ml_connector": {"type": "integer", "enum": [1]},
                                    "event": {"type": "string"},
                                    "ticket": {"type": "object"},
                                },
                            },
                        ]
                    }
                }
            },
        },
    }
