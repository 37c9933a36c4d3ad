"""The ledger's Intacct hints: deduplicated by idempotency key, consumed by a read that
started after them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.hints import IntacctHints

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_repeated_idempotency_key_is_stored_once(store: StagingStore) -> None:
    hints = IntacctHints(store)
    first = hints.append("key-1", T0)
    assert not first.duplicate and first.id is not None
    assert hints.append("key-1", T0 + timedelta(seconds=10)).duplicate
    # Without a key nothing can be deduplicated; each is kept (a hint costs at most a read).
    assert not hints.append(None, T0).duplicate
    assert not hints.append(None, T0).duplicate
    pending = hints.pending()
    assert (pending.count, pending.oldest, pending.newest) == (3, T0, T0)


def test_a_read_consumes_what_arrived_before_it_started(store: StagingStore) -> None:
    hints = IntacctHints(store)
    for i in range(5):
        hints.append(f"k{i}", T0 + timedelta(seconds=i))
    started = T0 + timedelta(seconds=2, milliseconds=500)
    assert hints.pending_since(started) == 2  # arrived during the read: one more read owed
    assert hints.consume_before(started) == 3
    assert hints.consume_before(started) == 0
    pending = hints.pending()
    assert (pending.count, pending.oldest) == (2, T0 + timedelta(seconds=3))
    assert hints.last_received() == T0 + timedelta(seconds=4)
