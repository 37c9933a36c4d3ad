"""The ticket-record load against an in-memory Intacct: every outcome a record can have
(created, updated, unchanged, quarantined, failed, answer lost and recovered)."""

from __future__ import annotations

from typing import Any

import pytest

from connector_pipeline.flows.ticket_records import (
    QUARANTINE_RECORD,
    QUARANTINE_UNMATCHED,
    TicketRecordLoad,
    TicketRecordOptions,
    TicketRecordResult,
)
from connector_pipeline.intacct import IntacctWriteOutcomeUnknown
from connector_pipeline.staging import StagingStore, utcnow
from connector_pipeline.sync.tickets import TicketRecordMapping
from connector_pipeline_tests.flows.fakes import FakeIntacct, Item, Log
from connector_pipeline_tests.staging.factories import ticket_row, vendor_row

ORG = 360000001


def _ledger(store: StagingStore, tickets: int) -> None:
    """One linked vendor and `tickets` staged tickets of its organization."""
    vendor = vendor_row(1)
    store.upsert_vendors([vendor])
    store.upsert_vendor_links(
        [
            {
                "external_id": vendor["vendor_id"],
                "source_object": "VENDOR",
                "vendor_id": vendor["vendor_id"],
                "organization_id": ORG,
                "written_hash": "h",
                "written_at": utcnow(),
            }
        ]
    )
    store.upsert_tickets([ticket_row(t) for t in range(1, tickets + 1)])


def _load(
    intacct: FakeIntacct, store: StagingStore, *, dry_run: bool = False, chunk: int = 0
) -> TicketRecordResult:
    flow = TicketRecordLoad(
        intacct, store, TicketRecordMapping(), TicketRecordOptions(dry_run=dry_run), Log()
    )
    if chunk:
        flow.writer.chunk_size = chunk
    return flow.run()


def test_created_then_unchanged_then_updated(store: StagingStore) -> None:
    _ledger(store, 3)
    intacct = FakeIntacct()
    first = _load(intacct, store)
    assert first.metadata()["created"] == 3 and first.metadata()["failed"] == 0
    assert len(intacct.records) == 3
    links = store.ticket_links()
    assert all(link["record_id"] and link["staged_hash"] for link in links.values())

    second = _load(intacct, store)
    assert (second.metadata()["created"], second.metadata()["updated"]) == (0, 0)
    assert second.api_calls == 0  # nothing changed: no call at all

    store.upsert_tickets([ticket_row(2, version=2, subject="Changed")])
    third = _load(intacct, store)
    assert (third.metadata()["created"], third.metadata()["updated"]) == (0, 1)
    assert intacct.for_ticket(2)[0]["subject"] == "Changed"
    assert len(intacct.records) == 3


def test_unmatched_ticket_is_quarantined_until_its_organization_is_linked(
    store: StagingStore,
) -> None:
    _ledger(store, 1)
    store.upsert_tickets([ticket_row(9, organization_id=777)])
    result = _load(FakeIntacct(), store)
    assert result.unmatched == 1 and result.metadata()["created"] == 1
    [item] = store.quarantine_list(QUARANTINE_UNMATCHED)
    assert item.key == "9" and "777" in item.reason


def test_refused_record_is_quarantined_then_resolved_once_written(store: StagingStore) -> None:
    _ledger(store, 2)
    store.upsert_tickets([ticket_row(2, subject="REJECT")])
    intacct = FakeIntacct()
    result = _load(intacct, store)
    assert result.metadata()["failed"] == 1 and result.metadata()["created"] == 1
    assert [q.key for q in store.quarantine_list(QUARANTINE_RECORD)] == ["2"]
    assert store.ticket_links()[2]["last_error"] == "BL01001973 bad"

    store.upsert_tickets([ticket_row(2, version=2, subject="Fixed")])
    again = _load(intacct, store)
    assert again.metadata()["created"] == 1 and again.metadata()["failed"] == 0
    assert store.quarantine_list(QUARANTINE_RECORD) == []


def test_a_lost_create_answer_is_resolved_by_lookup_not_resent(store: StagingStore) -> None:
    _ledger(store, 5)
    intacct = FakeIntacct()
    intacct.lose_answers = 1  # the first chunk is written, its answer lost
    result = _load(intacct, store, chunk=2)
    assert result.recovered == 2
    assert result.metadata()["created"] == 5 and result.metadata()["failed"] == 0
    assert intacct.writes == 5 and len(intacct.records) == 5  # no duplicate, no resend
    assert intacct.calls.count("create") == 3
    assert all(link["record_id"] for link in store.ticket_links().values())


def test_answers_lost_for_good_keep_every_confirmed_write(store: StagingStore) -> None:
    _ledger(store, 4)
    intacct = FakeIntacct()
    flow = TicketRecordLoad(intacct, store, TicketRecordMapping(), TicketRecordOptions(), Log())
    flow.writer.chunk_size, flow.writer.max_rounds = 2, 2
    # The first chunk is written and answered; every later create is lost on the way.
    original = intacct.create

    def create_then_lose_the_rest(object_name: str, records: Any) -> list[Item]:
        intacct.drop_creates = 0 if not intacct.records else 1
        return original(object_name, records)

    intacct.create = create_then_lose_the_rest  # type: ignore[method-assign]
    with pytest.raises(IntacctWriteOutcomeUnknown):
        flow.run()
    links = store.ticket_links()
    # Recorded although the step failed after it: the confirmed chunk is not written again.
    assert {t for t, link in links.items() if link["record_id"]} == {1, 2}

    intacct.create = original  # type: ignore[method-assign]
    rerun = _load(intacct, store)  # Dagster's retry
    assert rerun.metadata()["created"] == 2 and rerun.metadata()["failed"] == 0
    assert all(len(intacct.for_ticket(t)) == 1 for t in range(1, 5))
    assert intacct.writes == 4


def test_a_record_deleted_in_intacct_is_looked_up_and_created_again(store: StagingStore) -> None:
    _ledger(store, 1)
    intacct = FakeIntacct()
    _load(intacct, store)
    intacct.records.clear()  # someone deleted it in Intacct
    store.upsert_tickets([ticket_row(1, version=2, subject="Changed")])
    failed = _load(intacct, store)
    assert failed.metadata()["failed"] == 1
    assert store.ticket_links()[1]["record_id"] is None  # not_found: forget the id
    store.upsert_tickets([ticket_row(1, version=3, subject="Changed again")])
    recreated = _load(intacct, store)
    assert recreated.metadata()["created"] == 1
    assert intacct.for_ticket(1)[0]["subject"] == "Changed again"


def test_dry_run_plans_with_the_lookup_and_writes_nothing(store: StagingStore) -> None:
    _ledger(store, 3)
    intacct = FakeIntacct()
    intacct.records["77"] = {"id": "77", "ticket_id": "2"}  # written by a crashed run
    result = _load(intacct, store, dry_run=True)
    assert (result.would_create, result.would_update) == (2, 1)
    assert intacct.calls == ["query"] and store.ticket_links() == {}
    assert [p["action"] for p in result.preview] == ["create", "create", "update"]


def test_the_load_pages_through_the_backlog_a_page_at_a_time(store: StagingStore) -> None:
    """Memory follows a page: each page is read, looked up and written before the next
    one is read, and a refused record does not stop the keyset from moving on."""
    _ledger(store, 7)
    store.upsert_tickets([ticket_row(3, subject="REJECT")])
    intacct = FakeIntacct()
    flow = TicketRecordLoad(
        intacct, store, TicketRecordMapping(), TicketRecordOptions(), Log(), page_size=3
    )
    result = flow.run()
    assert result.pages == 3  # 3 + 3 + 1 tickets
    assert result.metadata()["created"] == 6 and list(result.failed) == [3]
    # One lookup per page (before its creates), never one for the whole backlog.
    assert intacct.calls.count("query") == 3
    assert sorted(r["ticket_id"] for r in intacct.records.values()) == [
        str(t) for t in (1, 2, 4, 5, 6, 7)
    ]
    # Only the refused ticket is still to load, in a page of its own.
    assert [t["ticket_id"] for t in store.tickets_to_load(after=None, limit=3)] == [3]


def test_tickets_to_load_pages_by_ticket_id(store: StagingStore) -> None:
    store.upsert_tickets([ticket_row(t) for t in (5, 1, 9, 3)])
    first = store.tickets_to_load(limit=2)
    assert [t["ticket_id"] for t in first] == [1, 3]
    rest = store.tickets_to_load(after=first[-1]["ticket_id"], limit=2)
    assert [t["ticket_id"] for t in rest] == [5, 9]
    assert store.tickets_to_load(after=9, limit=2) == []


def test_a_page_sends_only_whole_chunks_and_carries_the_rest(store: StagingStore) -> None:
    """Pages of 3 tickets, chunks of 2 writes: 7 tickets cost 4 creates (2+2+2+1), not
    one partly filled create per page (2+1, 2+1, 1)."""
    _ledger(store, 7)
    intacct = FakeIntacct()
    flow = TicketRecordLoad(
        intacct, store, TicketRecordMapping(), TicketRecordOptions(), Log(), page_size=3
    )
    flow.writer.chunk_size = 2
    result = flow.run()
    assert result.metadata()["created"] == 7 and result.pages == 3
    assert intacct.calls.count("create") == 4
    assert store.tickets_to_load() == []
