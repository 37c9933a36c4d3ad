"""The ledger's Intacct hints: verified outbound webhook deliveries waiting to be covered by
a vendor read. A hint is consumed once a vendor read that started after it has succeeded, so
a delivery that arrives during a read causes exactly one more read, and a burst of them at
most two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector_pipeline.staging.schema import intacct_hints
from connector_pipeline.staging.store import StagingStore, utcnow

# When the latest vendor read began reading (ISO 8601, UTC): hints received before it are
# covered by that read, later ones call for one more.
HINT_READ_STARTED_CURSOR = "hints/vendor_read_started"


@dataclass(frozen=True)
class HintAppend:
    id: int | None  # None for a repeat of an idempotency key already stored
    duplicate: bool


@dataclass(frozen=True)
class PendingHints:
    count: int
    oldest: datetime | None
    newest: datetime | None


class IntacctHints:
    """Reads and writes `intacct_hints` through a store's engine."""

    def __init__(self, store: StagingStore) -> None:
        self.store = store

    def append(
        self, idempotency_key: str | None, received_at: datetime | None = None
    ) -> HintAppend:
        """Store one delivery; a repeat of an idempotency key is a duplicate and stores
        nothing (Intacct keeps the key across its retries)."""
        module = postgresql if self.store.dialect == "postgresql" else sqlite
        stmt = (
            module.insert(intacct_hints)
            .values(idempotency_key=idempotency_key, received_at=received_at or utcnow())
            .on_conflict_do_nothing(index_elements=[intacct_hints.c.idempotency_key])
            .returning(intacct_hints.c.id)
        )
        with self.store.transaction() as conn:
            new_id = conn.execute(stmt).scalar()
        return HintAppend(id=None if new_id is None else int(new_id), duplicate=new_id is None)

    def pending(self) -> PendingHints:
        h = intacct_hints
        with self.store.engine.connect() as conn:
            count, oldest, newest = conn.execute(
                select(func.count(), func.min(h.c.received_at), func.max(h.c.received_at)).where(
                    h.c.consumed_at.is_(None)
                )
            ).one()
        # min() and max() keep the column's type, so these come back aware UTC.
        return PendingHints(int(count), oldest, newest)

    def pending_since(self, since: datetime) -> int:
        """Unconsumed hints received at or after `since` (not covered by a read that
        started then)."""
        h = intacct_hints
        with self.store.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(h.c.consumed_at.is_(None), h.c.received_at >= since)
                ).scalar_one()
            )

    def consume_before(self, started_at: datetime) -> int:
        """Mark consumed every hint received before a successful read started at
        `started_at`; returns how many."""
        h = intacct_hints
        with self.store.transaction() as conn:
            result = conn.execute(
                update(h)
                .where(h.c.consumed_at.is_(None), h.c.received_at < started_at)
                .values(consumed_at=utcnow())
            )
        return int(result.rowcount or 0)

    def last_received(self) -> datetime | None:
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.max(intacct_hints.c.received_at))).scalar()
