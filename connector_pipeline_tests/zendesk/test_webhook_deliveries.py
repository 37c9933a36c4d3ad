"""Signed webhook deliveries from the sandbox, checked with `zendesk.webhooks`, and the
signature scheme against a vector computed by hand with hmac and base64."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from connector_pipeline.zendesk.webhooks import (
    INVOCATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    parse_timestamp,
    sign,
    verify_signature,
)
from connector_pipeline_tests.support import ServerHandle, serve_asgi
from connector_pipeline_tests.zendesk.conftest import RunningSandbox, running_sandbox

SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="


@dataclass
class Receiver:
    """A webhook endpoint that records raw deliveries and fails the first `fail_first`."""

    fail_first: int = 0
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ServerHandle | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hooks/zendesk"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver()
    app = FastAPI()

    @app.post("/hooks/zendesk")
    async def hook(request: Request) -> Response:
        body = await request.body()
        with target.lock:
            target.deliveries.append((dict(request.headers), body))
            failing = len(target.deliveries) <= target.fail_first
        return Response(status_code=500 if failing else 200)

    with serve_asgi(app) as server:
        target.server = server
        yield target


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[RunningSandbox]:
    with running_sandbox(webhook_url=receiver.url, webhook_secret=SECRET) as running:
        yield running


def _wait(sandbox: RunningSandbox) -> None:
    assert sandbox.sandbox.webhooks.wait_idle(30), "deliveries did not finish"


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in receiver.deliveries]


def test_hand_computed_vector() -> None:
    timestamp = "2023-09-18T23:38:13Z"
    body = b'{"type":"zen:event-type:ticket.created","id":"e1"}'
    expected = base64.b64encode(
        hmac.new(SECRET.encode("utf-8"), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()
    assert sign(SECRET, body, timestamp) == expected
    now = parse_timestamp(timestamp) + timedelta(seconds=10)
    verify_signature(SECRET, body, timestamp, expected, now=now)
    changed = body[:-2] + b"2}"  # one byte different
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(SECRET, changed, timestamp, expected, now=now)
    assert caught.value.reason == "mismatch"
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature("another secret", body, timestamp, expected, now=now)
    assert caught.value.reason == "mismatch"
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(SECRET, body, timestamp, expected, now=now + timedelta(seconds=301))
    assert caught.value.reason == "stale"
    verify_signature(SECRET, body, timestamp, expected, tolerance_s=None)  # tolerance off


def test_legacy_documented_vector_uses_the_other_order() -> None:
    """The older doc page signed body + timestamp; we implement timestamp + body, so its
    example must not verify (reference/zendesk-api.md, 6.1, vector 2)."""
    secret = "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="
    body, timestamp = b'{"say": "hello"}', "2021-07-25T10:00:00Z"
    signature = "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw="
    digest = hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).digest()
    assert base64.b64encode(digest).decode() == signature
    with pytest.raises(WebhookVerificationError):
        verify_signature(secret, body, timestamp, signature, tolerance_s=None)


def test_sandbox_deliveries_are_signed_and_verifiable(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    with sandbox.scenario() as s:
        s.post("/_sandbox/seed", json={"organizations": 1}).raise_for_status()
        org_id = s.get("/_sandbox/organizations").json()[0]["id"]
        ticket = s.post(
            "/_sandbox/tickets",
            json={"subject": "Invoice missing", "organization_id": org_id, "priority": "high"},
        ).json()
        s.patch(f"/_sandbox/tickets/{ticket['id']}", json={"status": "open"}).raise_for_status()
        s.post(f"/_sandbox/tickets/{ticket['id']}/solve").raise_for_status()
        s.delete(f"/_sandbox/tickets/{ticket['id']}").raise_for_status()
    _wait(sandbox)
    assert len(receiver.deliveries) == 4
    for headers, body in receiver.deliveries:
        verify_signature(
            SECRET, body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
        )
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert headers["user-agent"] == "Zendesk Webhook"
        assert headers["x-zendesk-account-id"] == str(sandbox.config.account_id)
        assert headers["x-zendesk-webhook-id"] == sandbox.config.webhook_id
        assert headers[TIMESTAMP_HEADER.lower()].endswith("Z")
        with pytest.raises(WebhookVerificationError):
            verify_signature(
                SECRET,
                body + b" ",
                headers[TIMESTAMP_HEADER.lower()],
                headers[SIGNATURE_HEADER.lower()],
            )
    events = _events(receiver)
    assert [e["type"] for e in events] == [
        "zen:event-type:ticket.created",
        "zen:event-type:ticket.status_changed",
        "zen:event-type:ticket.status_changed",
        "zen:event-type:ticket.soft_deleted",
    ]
    created = events[0]
    assert created["subject"] == f"zen:ticket:{ticket['id']}"
    assert created["zendesk_event_version"] == "2022-06-20"
    assert created["detail"]["id"] == str(ticket["id"])
    assert created["detail"]["organization_id"] == str(org_id)
    assert created["detail"]["priority"] == "HIGH" and created["detail"]["status"] == "NEW"
    assert events[1]["event"]["previous"] == "NEW" and events[1]["event"]["current"] == "OPEN"
    assert events[2]["event"]["current"] == "SOLVED"
    assert len({e["id"] for e in events}) == 4
    invocations = [h[INVOCATION_ID_HEADER.lower()] for h, _ in receiver.deliveries]
    assert len(set(invocations)) == 4
    stats = sandbox.stats()
    assert stats["scenario_writes"]["ticket"] == {"create": 1, "update": 2, "delete": 1}
    assert stats["writes"]["ticket"] == {}


def test_failed_deliveries_are_retried_with_the_same_invocation_id(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    with sandbox.scenario() as s:
        s.post("/_sandbox/tickets", json={"subject": "retry me"}).raise_for_status()
    _wait(sandbox)
    assert len(receiver.deliveries) == 3
    invocation_ids = {h[INVOCATION_ID_HEADER.lower()] for h, _ in receiver.deliveries}
    assert len(invocation_ids) == 1
    bodies = {body for _, body in receiver.deliveries}
    assert len(bodies) == 1  # the same event each time
    stamps = [parse_timestamp(h[TIMESTAMP_HEADER.lower()]) for h, _ in receiver.deliveries]
    assert stamps == sorted(stamps)
    for headers, body in receiver.deliveries:  # each attempt is signed afresh
        verify_signature(
            SECRET, body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
        )
    with sandbox.scenario() as s:
        log = s.get("/_sandbox/webhook/deliveries").json()
    assert [(e["attempt"], e["status_code"], e["ok"]) for e in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]


def test_unreachable_target_gives_up_after_bounded_attempts() -> None:
    with running_sandbox(
        webhook_url="http://127.0.0.1:9/nothing", webhook_max_attempts=3
    ) as sandbox:
        with sandbox.scenario() as s:
            s.post("/_sandbox/tickets", json={"subject": "nobody home"}).raise_for_status()
        _wait(sandbox)
        log = sandbox.sandbox.webhooks.deliveries()
        assert [e["attempt"] for e in log] == [1, 2, 3]
        assert all(e["error"] and not e["ok"] for e in log)
        assert sandbox.sandbox.webhooks.invocations()[0]["status"] == "terminated"


def test_duplicate_deliveries_on_demand(sandbox: RunningSandbox, receiver: Receiver) -> None:
    with sandbox.scenario() as s:
        s.post("/_sandbox/tickets", json={"subject": "one"}).raise_for_status()
        s.post("/_sandbox/tickets", json={"subject": "two"}).raise_for_status()
        _wait(sandbox)
        same = s.post("/_sandbox/webhook/redeliver", json={"count": 2}).json()
        _wait(sandbox)
        fresh = s.post(
            "/_sandbox/webhook/redeliver", json={"count": 1, "new_invocation": True}
        ).json()
        _wait(sandbox)
    assert len(receiver.deliveries) == 5
    first_two = [h[INVOCATION_ID_HEADER.lower()] for h, _ in receiver.deliveries[:2]]
    again = [h[INVOCATION_ID_HEADER.lower()] for h, _ in receiver.deliveries[2:4]]
    assert again == first_two == same["invocation_ids"]
    assert [b for _, b in receiver.deliveries[2:4]] == [b for _, b in receiver.deliveries[:2]]
    last_headers, last_body = receiver.deliveries[4]
    assert last_headers[INVOCATION_ID_HEADER.lower()] == fresh["invocation_ids"][0]
    assert last_headers[INVOCATION_ID_HEADER.lower()] not in first_two
    assert json.loads(last_body)["id"] == json.loads(receiver.deliveries[1][1])["id"]


def test_webhook_target_and_secret_can_be_changed(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    with sandbox.scenario() as s:
        s.post("/_sandbox/webhook", json={"url": receiver.url, "secret": "rotated"})
        s.post("/_sandbox/tickets", json={"subject": "after rotation"}).raise_for_status()
    _wait(sandbox)
    headers, body = receiver.deliveries[-1]
    verify_signature(
        "rotated", body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
    )
    age = datetime.now(UTC) - parse_timestamp(headers[TIMESTAMP_HEADER.lower()])
    assert age < timedelta(seconds=60)


def test_deliveries_read_back_as_the_rest_ticket(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    """What the receiver parses from a sandbox delivery matches what the REST API says."""
    from connector_pipeline.zendesk.events import parse_webhook_payload

    with sandbox.scenario() as s:
        ticket = s.post(
            "/_sandbox/tickets",
            json={"subject": "Remittance", "priority": "low", "type": "question", "tags": ["ap"]},
        ).json()
    _wait(sandbox)
    event = parse_webhook_payload(receiver.deliveries[0][1])
    assert event.ticket_id == ticket["id"] and event.event_id
    for key in ("status", "priority", "type", "subject", "organization_id", "updated_at"):
        assert event.ticket[key] == ticket[key], key
