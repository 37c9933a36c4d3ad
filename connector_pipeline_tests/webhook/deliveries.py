"""Signed webhook deliveries for the receiver tests, shaped like Zendesk's."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from connector_pipeline import settings
from connector_pipeline.zendesk.webhooks import (
    ACCOUNT_ID_HEADER,
    INVOCATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    sign,
)

SECRET = "dGVzdF9zZWNyZXRfZm9yX21sX2Nvbm5lY3Rvcg=="
OLD_SECRET = "b2xkX3NlY3JldF9iZWZvcmVfcm90YXRpb24="
WEBHOOK_PATH = settings.WEBHOOK_PATH


def zendesk_timestamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ticket_event(
    ticket_id: int = 42,
    *,
    event_id: str | None = None,
    event_type: str = "ticket.status_changed",
    organization_id: str | None = "6164125400602",
    status: str = "OPEN",
) -> dict[str, Any]:
    """An event-subscribed ticket payload: ids as strings, enums in upper case."""
    return {
        "type": f"zen:event-type:{event_type}",
        "account_id": 18525119,
        "id": event_id or str(uuid.uuid4()),
        "time": "2024-05-02T10:11:12Z",
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {
            "actor_id": "6130907993114",
            "assignee_id": "6130907993114",
            "brand_id": "6130830354842",
            "created_at": "2024-05-01T09:00:00Z",
            "custom_status": "6130892426138",
            "description": 'Printer says "PC LOAD LETTER"',
            "external_id": "",
            "form_id": "6130830344474",
            "group_id": "6130852536346",
            "id": str(ticket_id),
            "is_public": True,
            "organization_id": organization_id,
            "priority": "HIGH",
            "requester_id": "6130869168922",
            "status": status,
            "subject": "Invoice question",
            "submitter_id": "6130869168922",
            "tags": ["billing", "vip"],
            "type": "QUESTION",
            "updated_at": "2024-05-02T10:11:12Z",
            "via": {"channel": "web_service"},
        },
        "event": {"current": status, "previous": "NEW"},
    }


def trigger_payload(ticket_id: int = 7, **overrides: str) -> dict[str, Any]:
    """The documented trigger template, as Zendesk renders it (docs/webhooks.md)."""
    ticket = {
        "id": str(ticket_id),
        "status": "Open",
        "priority": "Normal",
        "type": "Incident",
        "organization_id": "6164125400602",
        "requester_id": "6130869168922",
        "assignee_id": "",
        "group_id": "6130852536346",
        "brand_id": "6130830354842",
        "external_id": "",
        "tags": "billing vip",
        "created_at": "2024-05-01T09:00Z",
        "updated_at": "2024-05-02T10:11:12Z",
        **overrides,
    }
    return {"ml_connector": 1, "event": "ticket.updated", "account": "acme", "ticket": ticket}


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ": ")).encode()


def signed_headers(
    body: bytes,
    *,
    secret: str = SECRET,
    timestamp: str | None = None,
    invocation_id: str | None = None,
    content_type: str = "application/json; charset=utf-8",
) -> dict[str, str]:
    ts = timestamp or zendesk_timestamp()
    return {
        "Content-Type": content_type,
        "User-Agent": "Zendesk Webhook",
        ACCOUNT_ID_HEADER: "18525119",
        WEBHOOK_ID_HEADER: "01HAN96XNH1J7DY8D7RZ22QMT9",
        INVOCATION_ID_HEADER: invocation_id or f"inv-{uuid.uuid4()}",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret, body, ts),
    }


def stale_timestamp(seconds: float = 3600) -> str:
    return zendesk_timestamp(datetime.now(UTC) - timedelta(seconds=seconds))


# ---------------------------------------------------------------- Intacct outbound webhooks
INTACCT_CLIENT_ID = "ml-connector-test.app.sage.com"
INTACCT_CLIENT_SECRET = "intacct-app-client-secret-of-the-test-app"


def intacct_trigger_headers(
    *,
    key: str | None = "idem-1",
    secret: str = INTACCT_CLIENT_SECRET,
    client_id: str = INTACCT_CLIENT_ID,
    issued_at: float | None = None,
    algorithm: str = "HS256",
) -> dict[str, str]:
    """The headers of an Intacct Platform Trigger delivery as Sage documents them: a bearer
    JWT, the base64 trusted context carrying the client id, and the idempotency key."""
    import base64
    import time

    import jwt

    now = time.time() if issued_at is None else issued_at
    token = jwt.encode(
        {"iat": int(now), "exp": int(now) + 300, "iss": "intacct"}, secret, algorithm=algorithm
    )
    context = base64.b64encode(
        json.dumps({"clientId": client_id, "companyId": "sandbox"}).encode()
    ).decode()
    headers = {"Authorization": f"Bearer {token}", "X-Trusted-Context": context}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers
