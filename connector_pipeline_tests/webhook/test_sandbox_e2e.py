"""Signed deliveries from the sandbox Zendesk, end to end: the sandbox's webhook dispatcher
posts to the receiver over real HTTP, the inbox holds each event once, and every stored
body parses into the same ticket the sandbox's REST API shows."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from connector_pipeline import settings
from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.schema import webhook_inbox
from connector_pipeline.webhook.app import create_app
from connector_pipeline.zendesk.events import parse_webhook_payload
from connector_pipeline_tests.support import serve_asgi

sandbox_zendesk = pytest.importorskip("connector_pipeline.sandbox.zendesk")
sandbox_state = pytest.importorskip("connector_pipeline.sandbox.zendesk_state")

COMPARED_FIELDS = ("id", "status", "priority", "type", "organization_id", "requester_id")


def wait_until(predicate: Any, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def inbox_bodies(store: StagingStore) -> list[bytes]:
    with store.engine.connect() as conn:
        rows = conn.execute(webhook_inbox.select().order_by(webhook_inbox.c.id))
        return [bytes(r.body) for r in rows]


def test_sandbox_deliveries_are_accepted_end_to_end(store: StagingStore) -> None:
    secret = "e2e-signing-secret"
    with serve_asgi(create_app(store, secrets=[secret, "an-older-secret"])) as receiver:
        config = sandbox_state.ZendeskSandboxConfig(
            webhook_url=receiver.url + settings.WEBHOOK_PATH,
            webhook_secret=secret,
            webhook_retry_base_s=0.05,
        )
        with (
            serve_asgi(sandbox_zendesk.create_app(config)) as zd,
            httpx.Client(base_url=zd.url, timeout=30) as client,
        ):

            def deliveries() -> list[dict[str, Any]]:
                return list(client.get("/_sandbox/webhook/deliveries").json())

            created = client.post(
                "/_sandbox/tickets",
                json={"subject": "Invoice mismatch", "status": "open", "priority": "normal"},
            ).json()
            ticket_id = int(created["id"])
            client.patch(
                f"/_sandbox/tickets/{ticket_id}", json={"status": "pending", "priority": "high"}
            )
            # created + status_changed + priority_changed
            wait_until(lambda: sum(d["ok"] for d in deliveries()) >= 3)
            assert all(d["status_code"] == 200 for d in deliveries())
            assert store.inbox_stats()["total"] == 3

            # Zendesk re-sends: the same invocation again, and the same event in a new one.
            client.post("/_sandbox/webhook/redeliver", json={"count": 2})
            client.post("/_sandbox/webhook/redeliver", json={"count": 1, "new_invocation": True})
            wait_until(lambda: sum(d["ok"] for d in deliveries()) >= 6)
            assert store.inbox_stats()["total"] == 3
            health = httpx.get(receiver.url + "/healthz", timeout=30).json()["deliveries"]
            assert (health["accepted"], health["duplicate"], health["rejected"]) == (3, 3, 0)

            rest = client.get(
                f"{settings.ZENDESK_API_PREFIX}/tickets/{ticket_id}",
                auth=(f"{config.email}/token", config.api_token),
            ).json()["ticket"]

    events = [parse_webhook_payload(body) for body in inbox_bodies(store)]
    assert [e.event_type for e in events[:1]] == ["ticket.created"]
    assert sorted(e.event_type for e in events[1:]) == [
        "ticket.priority_changed",
        "ticket.status_changed",
    ]
    assert {e.ticket_id for e in events} == {ticket_id}
    assert all(e.complete for e in events)
    latest = events[-1].ticket
    assert {k: latest.get(k) for k in COMPARED_FIELDS} == {k: rest[k] for k in COMPARED_FIELDS}
    assert latest["updated_at"] == rest["updated_at"]
