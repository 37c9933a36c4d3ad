"""Support context on the vendor record, end to end against both sandboxes: a polled
ticket and a webhook-delivered ticket land in Intacct with their requester's name and
e-mail and their group's name (sideloaded, no extra call for the poll), and solving a
ticket sets the derived solved_at while reopening it clears it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from connector_pipeline.defs.tickets import (
    intacct_ticket_records,
    zendesk_ticket_events,
    zendesk_tickets,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.scenario import seed_vendors
from connector_pipeline.sandbox.zendesk_state import FIRST_USER_ID
from connector_pipeline.webhook.app import create_app as create_receiver
from connector_pipeline_tests.e2e.harness import TICKET_OBJECT, Pipeline, pipeline
from connector_pipeline_tests.support import serve_asgi

WEBHOOK_SECRET = "e2e-context-secret"
DELIVERY_TIMEOUT_S = 60
POLLED_REQUESTER = FIRST_USER_ID + 321
PUSHED_REQUESTER = FIRST_USER_ID + 654
SHOW_MANY = "GET /tickets/show_many"  # the sandbox's request count key


def _records(p: Pipeline) -> dict[int, dict[str, Any]]:
    return {int(r["ticket_id"]): r for r in p.intacct_records(TICKET_OBJECT)}


def _sandbox_ticket(p: Pipeline, ticket_id: int) -> dict[str, Any]:
    return next(t for t in p.tickets() if t["id"] == ticket_id)


def _poll(p: Pipeline) -> dict[str, Any]:
    """One live poll and load; the number of export requests it made."""
    before = p.zendesk_stats()["requests"]
    today = datetime.now(UTC).date().isoformat()
    p.materialize([zendesk_tickets, intacct_ticket_records], partition_key=today)
    after = p.zendesk_stats()["requests"]
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def _drain(p: Pipeline, pending_at_least: int) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while p.store.inbox_stats()["pending"] < pending_at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.store.inbox_stats()["pending"] >= pending_at_least
    p.materialize([zendesk_ticket_events, intacct_ticket_records])
    assert p.store.inbox_stats()["pending"] == 0


def _assert_names(record: dict[str, Any], user: dict[str, Any], group: dict[str, Any]) -> None:
    assert record["requester_name"] == user["name"]
    assert record["requester_email"] == user["email"]
    assert record["assignee_group"] == group["name"]


def test_ticket_records_carry_requester_group_and_solved_time(ledger_url: str) -> None:
    with pipeline(ledger_url) as p:
        seed_vendors(p.sandboxes, vendors=5)
        p.materialize([intacct_vendors, zendesk_organizations])
        orgs = [o for o in p.organizations() if o.get("external_id")]
        with p.sandboxes.zendesk() as z:
            groups = z.get("/_sandbox/groups").raise_for_status().json()
            polled_user = z.get(f"/_sandbox/users/{POLLED_REQUESTER}").raise_for_status().json()
            pushed_user = z.get(f"/_sandbox/users/{PUSHED_REQUESTER}").raise_for_status().json()
            polled = (
                z.post(
                    "/_sandbox/tickets",
                    json={
                        "subject": "Remittance advice missing",
                        "organization_id": orgs[0]["id"],
                        "requester_id": POLLED_REQUESTER,
                        "group_id": groups[0]["id"],
                    },
                )
                .raise_for_status()
                .json()["id"]
            )

        # The poll: names come with the export, in the same requests.
        calls = _poll(p)
        assert set(calls) == {"GET /incremental/tickets/cursor"}, calls
        record = _records(p)[polled]
        _assert_names(record, polled_user, groups[0])
        assert not record.get("solved_at")

        # Solved: the record gets the time of the first version seen solved.
        with p.sandboxes.zendesk() as z:
            z.post(f"/_sandbox/tickets/{polled}/solve").raise_for_status()
        solved_at = _sandbox_ticket(p, polled)["updated_at"]
        _poll(p)
        record = _records(p)[polled]
        assert record["status"] == "solved" and record["solved_at"] == solved_at
        _assert_names(record, polled_user, groups[0])  # still there, unchanged

        # Reopened: cleared.
        with p.sandboxes.zendesk() as z:
            z.patch(f"/_sandbox/tickets/{polled}", json={"status": "open"}).raise_for_status()
        _poll(p)
        record = _records(p)[polled]
        assert record["status"] == "open" and not record.get("solved_at")

        # The webhook path: a new ticket's event names no one; the drain fetches it
        # with the sideloads, and later events for the same people cost no fetch.
        receiver = create_receiver(store=p.store, secrets=[WEBHOOK_SECRET])
        with serve_asgi(receiver) as server, p.sandboxes.zendesk() as z:
            z.post(
                "/_sandbox/webhook",
                json={"url": f"{server.url}/webhooks/zendesk", "secret": WEBHOOK_SECRET},
            ).raise_for_status()
            pushed = (
                z.post(
                    "/_sandbox/tickets",
                    json={
                        "subject": "Bank details changed?",
                        "organization_id": orgs[1]["id"],
                        "requester_id": PUSHED_REQUESTER,
                        "group_id": groups[1]["id"],
                    },
                )
                .raise_for_status()
                .json()["id"]
            )
            _drain(p, 1)
            record = _records(p)[pushed]
            _assert_names(record, pushed_user, groups[1])
            assert not record.get("solved_at")
            shows_before = p.zendesk_stats()["requests"].get(SHOW_MANY, 0)
            assert shows_before == 1  # the new ticket, fetched once for its names

            z.post(f"/_sandbox/tickets/{pushed}/solve").raise_for_status()
            _drain(p, 1)
            record = _records(p)[pushed]
            assert record["status"] == "solved"
            assert record["solved_at"] == _sandbox_ticket(p, pushed)["updated_at"]
            _assert_names(record, pushed_user, groups[1])
            shows_after = p.zendesk_stats()["requests"].get(SHOW_MANY, 0)
            assert shows_after == shows_before  # the people were known: no fetch
