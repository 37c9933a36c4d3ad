"""Group commit: deliveries share transactions, yet each gets its own, true answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.store import InboxAppend, InboxEvent
from connector_pipeline.webhook.ledger import Ledger, LedgerUnavailable


def event(invocation_id: str, event_id: str | None = None) -> InboxEvent:
    return InboxEvent(body=b"{}", headers={}, invocation_id=invocation_id, event_id=event_id)


async def append_all(ledger: Ledger, events: list[InboxEvent]) -> list[object]:
    try:
        return await asyncio.gather(*(ledger.append(e) for e in events), return_exceptions=True)
    finally:
        ledger.stop()


def test_concurrent_appends_share_transactions_and_dedupe(store: StagingStore) -> None:
    ledger = Ledger(store=store, owns_store=False, timeout_s=30, max_batch=8, max_flushes=1)
    events = [event(f"inv-{i}") for i in range(40)] + [event("inv-3"), event("x", "e-1")]
    events.append(event("y", "e-1"))  # same event id, other invocation
    outcomes = asyncio.run(append_all(ledger, events))
    assert all(isinstance(o, InboxAppend) for o in outcomes)
    appended = [o for o in outcomes if isinstance(o, InboxAppend)]
    assert [o.duplicate for o in appended[40:]] == [True, False, True]
    assert len({o.id for o in appended if not o.duplicate}) == 41
    assert store.inbox_stats()["total"] == 41


def test_a_failing_row_fails_only_itself(store: StagingStore) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths, so it has no failing row")
    ledger = Ledger(store=store, owns_store=False, timeout_s=30, max_batch=8, max_flushes=1)
    # Longer than the column: Postgres refuses the insert, and with it the whole batch.
    events = [event("ok-1"), event("x" * 200), event("ok-2")]
    outcomes = asyncio.run(append_all(ledger, events))
    assert isinstance(outcomes[0], InboxAppend) and not outcomes[0].duplicate
    assert isinstance(outcomes[1], LedgerUnavailable)
    assert "x" * 10 not in str(outcomes[1])  # names the error type, never the values
    assert isinstance(outcomes[2], InboxAppend) and not outcomes[2].duplicate
    assert store.inbox_stats()["total"] == 2


def test_sqlite_gets_one_write_transaction_at_a_time_postgres_several(
    store: StagingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counted from before BEGIN: a transaction waiting for SQLite's write lock counts too.
    in_flight = peak = 0
    lock = threading.Lock()
    transaction = store.transaction

    @contextmanager
    def counted() -> Iterator[Any]:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            time.sleep(0.05)  # long enough for the other flushes to start, if allowed
            with transaction() as conn:
                yield conn
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(store, "transaction", counted)
    ledger = Ledger(store=store, owns_store=False, timeout_s=30, max_batch=4, max_flushes=3)
    outcomes = asyncio.run(append_all(ledger, [event(f"inv-{i}") for i in range(40)]))
    assert all(isinstance(o, InboxAppend) and not o.duplicate for o in outcomes)
    assert store.inbox_stats()["total"] == 40
    # SQLite has one write lock: a second transaction would only sit in its busy-wait.
    assert peak == (1 if store.dialect == "sqlite" else 3)
