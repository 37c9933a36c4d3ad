"""Cursor-based incremental ticket export against the sandbox: many pages, deleted tickets,
a stop time, resuming from the kept cursor, and the 10-per-window limit never exceeded.

The sandbox's rate window is shrunk to one second (10 requests per second instead of per
minute), and the client's limiter is given the same window: the rule is the same, only
the clock is faster."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, cast

import pytest

from connector_pipeline.zendesk import TicketExportPage, parse_export_page
from connector_pipeline_tests.zendesk.conftest import RunningSandbox, running_sandbox

WINDOW_S = 1.0


@pytest.fixture
def seeded() -> Iterator[RunningSandbox]:
    with running_sandbox(rate_window_s=WINDOW_S) as sandbox:
        with sandbox.scenario() as s:
            s.post(
                "/_sandbox/seed", json={"organizations": 5, "tickets": 1200, "days": 30}
            ).raise_for_status()
        yield sandbox


def _all_tickets(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    with sandbox.scenario() as s:
        return list(s.get("/_sandbox/tickets").json())


def test_export_many_pages_with_deletions_and_a_stop_time(seeded: RunningSandbox) -> None:
    deleted = list(range(5, 305, 10))  # 30 tickets
    with seeded.scenario() as s:
        for ticket_id in deleted:
            s.delete(f"/_sandbox/tickets/{ticket_id}").raise_for_status()
    client = seeded.client(incremental_window_s=WINDOW_S)

    pages = list(client.iter_ticket_export(start_time=0, per_page=40))
    assert len(pages) == 30  # 1,200 tickets, 40 per page
    assert [p.end_of_stream for p in pages] == [False] * 29 + [True]
    assert pages[-1].after_cursor  # kept at end of stream
    exported = [t for p in pages for t in p.tickets]
    assert sorted(t["id"] for t in exported) == list(range(1, 1201))
    assert sorted(i for p in pages for i in p.deleted_ids) == deleted
    assert all(t["subject"] == "SCRUBBED" for t in exported if t["id"] in deleted)
    stamps = [t["generated_timestamp"] for t in exported]
    assert stamps == sorted(stamps)

    held = _all_tickets(seeded)
    live = sorted(t["generated_timestamp"] for t in held if t["status"] != "deleted")
    start, end = live[100], live[700]
    window = list(client.iter_ticket_export(start_time=start, end_time=end, per_page=40))
    expected = {t["id"] for t in held if start <= t["generated_timestamp"] < end}
    got = [t["id"] for p in window for t in p.tickets]
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    assert window[-1].passed_end_time and not window[-1].end_of_stream
    assert len(window) < len(pages)  # stopped at the stop time, not at the end of stream

    stats = seeded.stats()
    assert stats["rate_limited"] == {}
    assert "429" not in stats["responses_by_status"]
    assert stats["incremental_requests"] == len(pages) + len(window)
    assert stats["max_incremental_in_window"] <= 10
    assert client.incremental_wait_s > 0  # the limiter, not luck, kept it under
    client.close()


def test_resume_from_the_kept_cursor(seeded: RunningSandbox) -> None:
    client = seeded.client(incremental_window_s=WINDOW_S)
    pages = list(client.iter_ticket_export(start_time=0))
    assert [len(p.tickets) for p in pages] == [1000, 200]
    cursor = pages[-1].after_cursor
    with seeded.scenario() as s:
        new = s.post("/_sandbox/tickets", json={"subject": "fresh", "organization_id": None})
        s.patch("/_sandbox/tickets/17", json={"priority": "urgent"}).raise_for_status()
        s.post("/_sandbox/tickets/18/solve").raise_for_status()
    resumed = list(client.iter_ticket_export(cursor=cursor))
    assert len(resumed) == 1 and resumed[0].end_of_stream
    assert [t["id"] for t in resumed[0].tickets] == [new.json()["id"], 17, 18]
    assert resumed[0].tickets[1]["priority"] == "urgent"
    assert resumed[0].tickets[2]["status"] == "solved"
    again = list(client.iter_ticket_export(cursor=resumed[0].after_cursor))
    assert again[0].tickets == [] and again[0].end_of_stream
    assert again[0].after_cursor == resumed[0].after_cursor
    client.close()


def test_export_excludes_the_last_minute() -> None:
    with running_sandbox(export_lag_s=60.0) as sandbox:
        with sandbox.scenario() as s:
            s.post("/_sandbox/seed", json={"tickets": 5, "days": 1}).raise_for_status()
            s.post("/_sandbox/tickets", json={"subject": "too recent"}).raise_for_status()
        client = sandbox.client()
        pages = list(client.iter_ticket_export(start_time=0))
        assert [t["id"] for p in pages for t in p.tickets] == [1, 2, 3, 4, 5]
        assert pages[-1].end_of_stream
        client.close()


def test_per_page_is_honoured(seeded: RunningSandbox) -> None:
    client = seeded.client(incremental_window_s=WINDOW_S)
    export = cast(Generator[TicketExportPage], client.iter_ticket_export(start_time=0, per_page=7))
    first, second = next(export), next(export)
    assert (len(first.tickets), len(second.tickets)) == (7, 7)
    assert first.after_cursor != second.after_cursor
    assert {t["id"] for t in first.tickets}.isdisjoint(t["id"] for t in second.tickets)
    export.close()
    client.close()


def _ticket(ticket_id: int, stamp: int, status: str = "open") -> dict[str, Any]:
    return {"id": ticket_id, "generated_timestamp": stamp, "status": status}


def test_records_are_deduplicated_by_id() -> None:
    seen: dict[int, int] = {}
    first = parse_export_page(
        {
            "tickets": [_ticket(1, 100), _ticket(2, 100), _ticket(1, 101), _ticket(3, 102)],
            "after_cursor": "c1",
            "end_of_stream": False,
        },
        seen=seen,
    )
    assert [(t["id"], t["generated_timestamp"]) for t in first.tickets] == [
        (1, 101),
        (2, 100),
        (3, 102),
    ]
    second = parse_export_page(
        {
            "tickets": [_ticket(2, 100), _ticket(3, 105, "deleted"), _ticket(4, 106)],
            "after_cursor": "c2",
            "end_of_stream": True,
        },
        seen=seen,
        end_time=106,
    )
    # 2 is a repeat at the same timestamp; 3 changed again (deleted) so it comes back;
    # 4 is at the stop time and belongs to the next window.
    assert [t["id"] for t in second.tickets] == [3]
    assert second.deleted_ids == [3]
    assert second.passed_end_time and second.after_cursor == "c2"
    assert isinstance(second, TicketExportPage) and second.received == 3
