"""The ticket poll and the webhook drain against an in-memory Zendesk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector_pipeline.flows.inbox import QUARANTINE_EVENT, InboxDrain
from connector_pipeline.flows.tickets import (
    LIVE_CURSOR,
    QUARANTINE_TICKET,
    TicketWindow,
    poll_tickets,
    range_cursor,
)
from connector_pipeline.staging import InboxEvent, StagingStore
from connector_pipeline.zendesk import TicketExportPage, ZendeskServerError
from connector_pipeline_tests.flows.fakes import FakeZendesk
from connector_pipeline_tests.webhook.deliveries import encode, trigger_payload

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def _ticket(ticket_id: int, subject: str = "Invoice", **over: Any) -> dict[str, Any]:
    return {
        "id": ticket_id,
        "subject": subject,
        "status": "open",
        "organization_id": 5,
        "updated_at": "2026-11-01T10:00:00Z",
        "generated_timestamp": 1_793_000_000 + ticket_id,
        **over,
    }


def _window(live: bool) -> TicketWindow:
    name = LIVE_CURSOR if live else range_cursor("2026-11-01", "2026-11-01")
    return TicketWindow(DAY, DAY + timedelta(days=1), name, live)


def test_a_range_poll_stages_pages_with_its_own_cursor(store: StagingStore) -> None:
    zendesk = FakeZendesk(
        export_pages=[
            TicketExportPage([_ticket(1), _ticket(2)], "c1", False),
            TicketExportPage([_ticket(3), {"id": "x"}], "c2", True, deleted_ids=[4]),
        ]
    )
    window = _window(live=False)
    result = poll_tickets(zendesk, store, window, now=DAY + timedelta(days=3))
    meta = result.metadata()
    assert (meta["fetched"], meta["new"], meta["invalid"], meta["deleted"]) == (4, 3, 1, 1)
    assert meta["mode"] == "range" and meta["pages"] == 2 and meta["api_calls"] == 2
    assert zendesk.export_calls == [
        {
            "start_time": int(DAY.timestamp()),
            "cursor": None,
            "end_time": int(window.end.timestamp()),
        }
    ]
    assert json.loads(store.get_cursor(window.cursor_name) or "")["cursor"] == "c2"
    assert store.get_cursor(LIVE_CURSOR) is None  # a range never moves the live cursor
    [bad] = store.quarantine_list(QUARANTINE_TICKET)
    assert bad.key == "x"

    # Run again: it resumes from its cursor and finds the tickets unchanged.
    again = poll_tickets(zendesk, store, window, now=DAY + timedelta(days=3))
    assert again.resumed_from_cursor and zendesk.export_calls[-1]["cursor"] == "c2"
    assert (again.counts.new, again.counts.unchanged) == (0, 3)


def test_the_live_poll_reads_to_the_present(store: StagingStore) -> None:
    zendesk = FakeZendesk(export_pages=[TicketExportPage([_ticket(1)], "c9", True)])
    result = poll_tickets(zendesk, store, _window(live=True), now=DAY + timedelta(hours=5))
    assert result.metadata()["mode"] == "live"
    assert zendesk.export_calls[0]["end_time"] is None
    assert json.loads(store.get_cursor(LIVE_CURSOR) or "")["cursor"] == "c9"


def _deliver(store: StagingStore, payload: Any, n: int) -> None:
    body = payload if isinstance(payload, bytes) else encode(payload)
    store.append_inbox(InboxEvent(body=body, headers={}, invocation_id=f"inv-{n}"))


def test_the_drain_stages_complete_events_and_fetches_the_rest(store: StagingStore) -> None:
    zendesk = FakeZendesk(tickets={7: _ticket(7), 9: _ticket(9, organization_id=None)})
    # Complete, and with no requester or group whose names would have to be fetched.
    _deliver(store, _event(7, requester_id=None, group_id=None), 1)
    _deliver(store, {"ml_connector": 1, "event": "ticket.updated", "ticket": {"id": "9"}}, 2)
    _deliver(store, b"not json", 3)
    _deliver(store, {"ml_connector": 1, "event": "ticket.updated", "ticket": {"id": "404"}}, 4)
    result = InboxDrain(zendesk, store).run()
    meta = result.metadata()
    assert (meta["events"], meta["staged"], meta["fetched"], meta["invalid"]) == (4, 2, 1, 1)
    assert meta["api_calls"] == 1  # one show_many for both incomplete events
    assert sorted(t["ticket_id"] for t in store.tickets()) == [7, 9]
    assert [q.key for q in store.quarantine_list(QUARANTINE_EVENT)] == ["3"]
    assert store.inbox_stats()["pending"] == 0


def test_a_failed_fetch_gives_the_batch_back_for_the_next_drain(store: StagingStore) -> None:
    class Unreachable(FakeZendesk):
        def show_many_tickets(self, ids: Any) -> list[dict[str, Any]]:
            raise ZendeskServerError("HTTP 503")

    _deliver(store, trigger_payload(7), 1)
    _deliver(store, {"ml_connector": 1, "event": "ticket.updated", "ticket": {"id": "9"}}, 2)
    with pytest.raises(ZendeskServerError):
        InboxDrain(Unreachable(), store).run()
    assert store.inbox_stats()["pending"] == 2 and store.tickets() == []
    result = InboxDrain(FakeZendesk(tickets={7: _ticket(7), 9: _ticket(9)}), store).run()
    assert result.staged == 2 and store.inbox_stats()["pending"] == 0


_ANA = {"name": "Ana Alvarez", "email": "ana@vendor.example"}
_AP = {"name": "Accounts Payable"}


def _event(ticket_id: int, **over: Any) -> dict[str, Any]:
    """A zen:event-type ticket event carrying the whole ticket, but no names."""
    detail = {
        "id": str(ticket_id),
        "status": "OPEN",
        "organization_id": "5",
        "requester_id": "77",
        "group_id": "360001",
        "subject": "Invoice question",
        "updated_at": "2026-11-02T10:00:00Z",
        **over,
    }
    return {
        "type": "zen:event-type:ticket.status_changed",
        "id": f"ev-{ticket_id}-{detail['updated_at']}",
        "time": detail["updated_at"],
        "subject": f"zen:ticket:{ticket_id}",
        "detail": detail,
        "event": {},
    }


def test_a_webhook_ticket_new_to_the_ledger_is_fetched_for_its_names(
    store: StagingStore,
) -> None:
    named = _ticket(
        7,
        requester_id=77,
        group_id=360001,
        requester=_ANA,
        group=_AP,
        updated_at="2026-11-02T10:00:00Z",
        generated_timestamp=None,  # show_many answers without it
    )
    zendesk = FakeZendesk(tickets={7: named})
    _deliver(store, _event(7), 1)
    first = InboxDrain(zendesk, store).run()
    assert first.api_calls == 1 and first.fetched == 1
    [row] = store.tickets()
    assert row["raw"]["requester"] == _ANA and row["raw"]["group"] == _AP

    # Its next event names the same people: staged from the event alone, names kept.
    _deliver(store, _event(7, status="SOLVED", updated_at="2026-11-03T10:00:00Z"), 2)
    second = InboxDrain(zendesk, store).run()
    assert second.api_calls == 0
    [row] = store.tickets()
    assert row["status"] == "solved"
    assert row["raw"]["requester"] == _ANA and row["raw"]["group"] == _AP
    assert row["raw"]["solved_at"] == "2026-11-03T10:00:00Z"

    # Reopened: the derived solve time goes; a new group is fetched for its name.
    zendesk.tickets[7] = {
        **named,
        "group_id": 360002,
        "group": {"name": "Billing"},
        "updated_at": "2026-11-04T10:00:00Z",
    }
    _deliver(
        store, _event(7, status="OPEN", group_id="360002", updated_at="2026-11-04T10:00:00Z"), 3
    )
    third = InboxDrain(zendesk, store).run()
    assert third.api_calls == 1
    [row] = store.tickets()
    assert "solved_at" not in row["raw"] and row["raw"]["group"] == {"name": "Billing"}


def test_the_poll_stages_the_solve_time_across_pages_and_runs(store: StagingStore) -> None:
    def page(status: str, stamp: int, updated: str) -> TicketExportPage:
        ticket = _ticket(1, status=status, generated_timestamp=stamp, updated_at=updated)
        return TicketExportPage([{**ticket, "requester": _ANA}], f"c{stamp}", True)

    window = _window(live=True)
    later = DAY + timedelta(days=9)
    poll_tickets(
        FakeZendesk(export_pages=[page("solved", 10, "2026-11-02T00:00:00Z")]), store, window, later
    )
    poll_tickets(
        FakeZendesk(export_pages=[page("closed", 20, "2026-11-06T00:00:00Z")]), store, window, later
    )
    [row] = store.tickets()
    assert row["status"] == "closed" and row["raw"]["solved_at"] == "2026-11-02T00:00:00Z"
    assert row["raw"]["requester"] == _ANA
