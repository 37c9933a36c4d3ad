"""The webhook inbox: append once, claim in batches, lease expiry, release with an error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connector_pipeline.staging import InboxEvent, StagingStore
from connector_pipeline.staging.schema import webhook_inbox

LEASE_S = 0.3


class Clock:
    """The store's "now", moved by the test: a lease runs out without waiting for it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clocked(ledger_url: str) -> Iterator[tuple[StagingStore, Clock]]:
    clock = Clock()
    store = StagingStore.open(ledger_url, clock=clock)
    try:
        yield store, clock
    finally:
        store.dispose()


def _event(n: int, **kw: object) -> InboxEvent:
    fields: dict[str, object] = {
        "body": b'{"ticket":{"id":%d}}' % n,
        "headers": {"x-zendesk-webhook-id": "01HWH", "x-zendesk-webhook-invocation-id": str(n)},
        "invocation_id": f"inv-{n}",
        "event_type": "zen:event-type:ticket.comment_added",
        "ticket_id": n,
    }
    fields.update(kw)
    return InboxEvent(**fields)  # type: ignore[arg-type]


def _errors(store: StagingStore) -> dict[int, str | None]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(webhook_inbox.c.id, webhook_inbox.c.error)).all()
    return {r.id: r.error for r in rows}


def test_append_is_deduplicated_by_invocation_and_event_id(store: StagingStore) -> None:
    first = store.append_inbox(_event(1, event_id="evt-1"))
    assert not first.duplicate and first.id is not None
    assert store.append_inbox(_event(1)).duplicate  # same invocation id
    again = store.append_inbox(_event(2, invocation_id="inv-other", event_id="evt-1"))
    assert again.duplicate and again.id is None  # same event id, another delivery
    # Deliveries without ids cannot be deduplicated and are all kept.
    assert not store.append_inbox(_event(3, invocation_id=None)).duplicate
    assert not store.append_inbox(_event(3, invocation_id=None)).duplicate
    assert store.inbox_stats() == {
        "total": 3,
        "pending": 3,
        "max_id": store.inbox_pending_ids()[-1],
    }


def test_claim_round_trips_the_delivery(store: StagingStore) -> None:
    received = datetime(2026, 11, 4, 10, 0, 0, 250000, tzinfo=UTC)
    appended = store.append_inbox(_event(7, received_at=received, event_id="e7"))
    (row,) = store.claim_inbox(10)
    assert row.id == appended.id
    assert (row.invocation_id, row.event_id, row.ticket_id) == ("inv-7", "e7", 7)
    assert row.event_type == "zen:event-type:ticket.comment_added"
    assert row.headers["x-zendesk-webhook-invocation-id"] == "7"
    assert row.body == b'{"ticket":{"id":7}}'
    assert row.received_at == received and row.received_at.tzinfo == UTC
    assert row.attempts == 1 and row.claim_token


def test_claims_are_batches_oldest_first_and_exclusive(store: StagingStore) -> None:
    ids = [store.append_inbox(_event(n)).id for n in range(10)]
    first = store.claim_inbox(4)
    second = store.claim_inbox(4)
    third = store.claim_inbox(4)
    assert [r.id for r in first] == ids[:4]
    assert [r.id for r in second] == ids[4:8]
    assert [r.id for r in third] == ids[8:]
    assert store.claim_inbox(4) == []  # everything is under lease
    assert len({r.claim_token for r in first}) == 1
    assert first[0].claim_token != second[0].claim_token

    store.mark_inbox_processed([r.id for r in first + second + third])
    assert store.inbox_stats()["pending"] == 0
    assert store.inbox_pending_ids() == []


def test_max_id_bounds_a_claim(store: StagingStore) -> None:
    ids = [store.append_inbox(_event(n)).id for n in range(5)]
    assert ids[0] is not None and ids[2] is not None
    assert [r.id for r in store.claim_inbox(10, max_id=ids[2])] == ids[:3]
    assert store.inbox_pending_ids(after_id=ids[0]) == ids[1:]
    assert store.inbox_pending_ids(limit=2) == ids[:2]


def test_expired_claim_becomes_claimable_again(clocked: tuple[StagingStore, Clock]) -> None:
    store, clock = clocked
    ids = [store.append_inbox(_event(n)).id for n in range(3)]
    claimed = store.claim_inbox(2, lease_seconds=LEASE_S)
    assert [r.id for r in claimed] == ids[:2]
    # Within the lease only the unclaimed row is available.
    assert [r.id for r in store.claim_inbox(10, lease_seconds=LEASE_S)] == ids[2:]
    clock.advance(LEASE_S * 2)
    # The first claimer never marked its rows: after the lease they come back, counted.
    reclaimed = store.claim_inbox(10, lease_seconds=60)
    assert [r.id for r in reclaimed] == ids
    assert [r.attempts for r in reclaimed] == [2, 2, 2]
    assert reclaimed[0].claim_token != claimed[0].claim_token
    store.mark_inbox_processed([r.id for r in reclaimed])
    clock.advance(LEASE_S * 2)
    assert store.claim_inbox(10, lease_seconds=LEASE_S) == []  # processed rows stay done


def test_a_lease_belongs_to_its_claim(clocked: tuple[StagingStore, Clock]) -> None:
    store, clock = clocked
    ids = [store.append_inbox(_event(n)).id for n in range(2)]
    held = store.claim_inbox(1, lease_seconds=60)
    clock.advance(LEASE_S * 2)
    # A claimer with a short lease of its own cannot take a row held under a long one.
    assert [r.id for r in store.claim_inbox(10, lease_seconds=LEASE_S)] == ids[1:]
    clock.advance(LEASE_S * 2)
    assert [r.id for r in store.claim_inbox(10, lease_seconds=LEASE_S)] == ids[1:]
    assert held[0].id == ids[0]


def test_release_makes_rows_claimable_with_their_error(store: StagingStore) -> None:
    ids = [store.append_inbox(_event(n)).id for n in range(3)]
    claimed = store.claim_inbox(10)
    store.release_inbox(claimed[:2], "Intacct GW-0010: try again later")
    assert _errors(store) == {
        ids[0]: "Intacct GW-0010: try again later",
        ids[1]: "Intacct GW-0010: try again later",
        ids[2]: None,
    }
    again = store.claim_inbox(10)  # long lease: only released rows come back
    assert [(r.id, r.attempts) for r in again] == [(ids[0], 2), (ids[1], 2)]
    assert ids[2] is not None
    store.mark_inbox_processed([r.id for r in again] + [ids[2]])
    assert _errors(store) == dict.fromkeys(ids)  # processing clears the error
    assert store.inbox_stats()["pending"] == 0


def test_release_truncates_long_errors(store: StagingStore) -> None:
    (appended,) = [store.append_inbox(_event(1))]
    store.release_inbox(store.claim_inbox(1), "x" * 10_000)
    assert len(_errors(store)[appended.id or 0] or "") == 2000


def test_a_drain_whose_lease_ran_out_cannot_release_the_next_claim(
    clocked: tuple[StagingStore, Clock],
) -> None:
    store, clock = clocked
    ids = [store.append_inbox(_event(n)).id for n in range(2)]
    slow = store.claim_inbox(10, lease_seconds=LEASE_S)
    clock.advance(LEASE_S + 0.2)
    fast = store.claim_inbox(10, lease_seconds=60)  # the lease ran out: claimed again
    assert [r.id for r in fast] == ids
    # The slow drain fails and gives its rows back: they are no longer its to give.
    assert store.release_inbox(slow, "timeout") == 0
    assert store.claim_inbox(10) == []  # still held by the fast drain
    assert store.release_inbox(fast, "Intacct GW-0010") == 2
    assert [r.id for r in store.claim_inbox(10)] == ids


def test_received_at_defaults_to_now(store: StagingStore) -> None:
    before = datetime.now(UTC)
    store.append_inbox(_event(1))
    (row,) = store.claim_inbox(1)
    assert before - timedelta(seconds=1) <= row.received_at <= datetime.now(UTC)


def test_append_many_stores_each_delivery_once_and_answers_in_order(store: StagingStore) -> None:
    def event(invocation: str | None, event_id: str | None) -> InboxEvent:
        return InboxEvent(body=b"{}", headers={}, invocation_id=invocation, event_id=event_id)

    first = store.append_inbox(event("inv-1", "ev-1"))
    results = store.append_inbox_many(
        [
            event("inv-1", "ev-9"),  # same invocation as an earlier delivery
            event("inv-2", "ev-2"),
            event("inv-2", "ev-2"),  # repeated inside the batch
            event("inv-3", "ev-1"),  # same event, new invocation
            event("inv-4", "ev-4"),
            event(None, None),
        ]
    )
    assert [r.duplicate for r in results] == [True, False, True, True, False, False]
    stored = {r.id for r in results if r.id is not None} | {first.id}
    assert len(stored) == 4
    assert store.inbox_stats()["total"] == 4
    assert store.append_inbox_many([]) == []
