"""A cursor never advances without the rows it covers, and never lags behind them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from connector_pipeline import settings
from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.schema import intacct_vendors, zendesk_tickets
from connector_pipeline_tests.staging.children import children
from connector_pipeline_tests.staging.factories import ticket_row, vendor_row

WATERMARK = "intacct.vendors.watermark"
TICKET_CURSOR = "zendesk.tickets.2026-11-01"
CHUNK = 10


class Interrupted(Exception):
    """Stands for anything that goes wrong between staging rows and committing."""


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several chunks per call, so a failure can land after some of them were executed.
    monkeypatch.setattr(settings, "UPSERT_CHUNK_ROWS", CHUNK)


def _seed(store: StagingStore) -> None:
    store.upsert_vendors([vendor_row(n) for n in range(1, 6)], cursor=(WATERMARK, "w1"))


def test_rows_and_cursor_commit_together(store: StagingStore, small_chunks: None) -> None:
    counts = store.upsert_vendors(
        [vendor_row(n) for n in range(1, 26)], cursor=(WATERMARK, "2026-11-01T10:00:00Z")
    )
    assert counts.new == 25
    assert store.count(intacct_vendors) == 25
    assert store.get_cursor(WATERMARK) == "2026-11-01T10:00:00Z"

    counts = store.upsert_tickets(
        [ticket_row(n) for n in range(1, 16)], cursor=(TICKET_CURSOR, "c2")
    )
    assert counts.new == 15
    assert store.count(zendesk_tickets) == 15
    assert store.get_cursor(TICKET_CURSOR) == "c2"


def test_constraint_violation_in_a_later_chunk_rolls_back_rows_and_cursor(
    store: StagingStore, small_chunks: None
) -> None:
    _seed(store)
    rows = [vendor_row(n, name="Changed") for n in range(1, 26)]
    rows[CHUNK + 5]["name"] = None  # type: ignore[typeddict-item]  # NOT NULL, second chunk
    with pytest.raises(IntegrityError):
        store.upsert_vendors(rows, cursor=(WATERMARK, "w2"))
    # The first chunk was executed before the failure, yet nothing of it was kept.
    assert store.get_cursor(WATERMARK) == "w1"
    assert store.count(intacct_vendors) == 5
    assert {v["name"] for v in store.vendors()} == {f"Acme Supplies {n}" for n in range(1, 6)}


def test_ticket_failure_rolls_back_rows_and_cursor(store: StagingStore, small_chunks: None) -> None:
    store.upsert_tickets([ticket_row(1)], cursor=(TICKET_CURSOR, "c1"))
    rows = [ticket_row(n, version=2) for n in range(1, 26)]
    rows[-1]["status"] = None  # type: ignore[typeddict-item]  # NOT NULL, last chunk
    with pytest.raises(IntegrityError):
        store.upsert_tickets(rows, cursor=(TICKET_CURSOR, "c2"))
    assert store.get_cursor(TICKET_CURSOR) == "c1"
    assert [(t["ticket_id"], t["version"]) for t in store.tickets()] == [(1, 1)]


def test_exception_inside_a_transaction_after_set_cursor(store: StagingStore) -> None:
    _seed(store)
    with pytest.raises(Interrupted), store.transaction() as conn:
        store.upsert_vendors([vendor_row(n) for n in range(6, 9)], conn=conn)
        store.set_cursor(WATERMARK, "w2", conn=conn)
        store.upsert_tickets([ticket_row(1)], cursor=(TICKET_CURSOR, "c1"), conn=conn)
        # Inside the transaction everything is visible...
        assert store.get_cursor(WATERMARK, conn=conn) == "w2"
        assert len(store.vendors(conn=conn)) == 8
        raise Interrupted
    # ...and after it, none of it.
    assert store.get_cursor(WATERMARK) == "w1"
    assert store.get_cursor(TICKET_CURSOR) is None
    assert store.count(intacct_vendors) == 5
    assert store.count(zendesk_tickets) == 0


def test_composed_transaction_commits_everything(store: StagingStore) -> None:
    with store.transaction() as conn:
        store.upsert_vendors([vendor_row(n) for n in range(1, 4)], conn=conn)
        store.upsert_vendor_links(
            [{"external_id": "V000001", "source_object": "VENDOR", "vendor_id": "V000001"}],
            conn=conn,
        )
        store.quarantine_add("organization", "V000002", "422", conn=conn)
        store.set_cursor(WATERMARK, "w9", conn=conn)
    assert store.get_cursor(WATERMARK) == "w9"
    assert store.count(intacct_vendors) == 3
    assert set(store.vendor_links()) == {"v000001"}
    assert store.quarantine_count() == 1


def test_process_killed_before_commit_leaves_nothing(ledger_url: str, tmp_path: Path) -> None:
    store = StagingStore.open(ledger_url)
    try:
        _seed(store)
        with children(tmp_path) as procs:
            child = procs.start(
                "crasher", "crash-mid-transaction", "--url", ledger_url, "--rows", "50"
            )
            assert child.wait() == 17, child.stderr
            assert child.stdout.strip() == "staged"  # it died after staging, before commit
        assert store.get_cursor(WATERMARK) == "w1"
        assert store.count(intacct_vendors) == 5
        # The ledger is writable afterwards: the dead transaction holds no lock.
        store.upsert_vendors([vendor_row(6)], cursor=(WATERMARK, "w2"))
        assert store.get_cursor(WATERMARK) == "w2"
    finally:
        store.dispose()


def test_open_and_read_while_a_writer_holds_its_transaction(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short busy timeout turns "waits for the writer" into a quick failure.
    monkeypatch.setattr(settings, "SQLITE_BUSY_TIMEOUT_MS", 1_000)
    writer = StagingStore.open(ledger_url)
    try:
        _seed(writer)
        with writer.transaction() as conn:
            writer.upsert_vendors([vendor_row(n) for n in range(6, 9)], conn=conn)
            writer.set_cursor(WATERMARK, "w2", conn=conn)
            # Meanwhile another process starts (say the webhook receiver) and reads.
            reader = StagingStore.open(ledger_url)
            try:
                assert reader.get_cursor(WATERMARK) == "w1"
                assert reader.count(intacct_vendors) == 5
            finally:
                reader.dispose()
        assert writer.get_cursor(WATERMARK) == "w2"
    finally:
        writer.dispose()
