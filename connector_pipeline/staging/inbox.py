"""webhook_inbox: deliveries committed before they are answered, claimed and drained."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import (
    Connection,
    func,
    or_,
    select,
    update,
)

from connector_pipeline import settings
from connector_pipeline.staging.base import LedgerBase, chunks
from connector_pipeline.staging.rows import (
    InboxAppend,
    InboxBacklog,
    InboxEvent,
    InboxRow,
)
from connector_pipeline.staging.schema import (
    webhook_inbox,
)


class InboxTables(LedgerBase):
    """webhook_inbox: deliveries committed before they are answered, claimed and drained."""

    def append_inbox(self, event_: InboxEvent, conn: Connection | None = None) -> InboxAppend:
        """Commit a delivery once; a repeat (same invocation id or event id) is a duplicate."""
        return self.append_inbox_many([event_], conn=conn)[0]

    def append_inbox_many(
        self, events: Sequence[InboxEvent], conn: Connection | None = None
    ) -> list[InboxAppend]:
        """`append_inbox` for several deliveries in one statement (the receiver's group
        commit): one INSERT ... ON CONFLICT DO NOTHING, so a batch costs one round trip
        and one statement compilation instead of one per delivery. Result i belongs to
        events[i]; a repeat within the batch is a duplicate too."""
        if not events:
            return []
        w = webhook_inbox
        stmt = (
            self._insert(w)
            .values(
                [
                    {
                        "invocation_id": e.invocation_id,
                        "event_id": e.event_id,
                        "event_type": e.event_type,
                        "ticket_id": e.ticket_id,
                        "headers": dict(e.headers),
                        "body": e.body,
                        "received_at": e.received_at,
                        "attempts": 0,
                    }
                    for e in events
                ]
            )
            .on_conflict_do_nothing()
            .returning(w.c.id, w.c.invocation_id, w.c.event_id)
        )
        with self._write(conn) as c:
            inserted = c.execute(stmt).all()
        # RETURNING order is not guaranteed: match rows back by the ids they carry.
        by_invocation = {r.invocation_id: r.id for r in inserted if r.invocation_id is not None}
        by_event = {r.event_id: r.id for r in inserted if r.event_id is not None}
        anonymous = [r.id for r in inserted if r.invocation_id is None and r.event_id is None]
        taken: set[int] = set()
        results: list[InboxAppend] = []
        for e in events:
            if e.invocation_id is not None:
                new_id = by_invocation.get(e.invocation_id)
            elif e.event_id is not None:
                new_id = by_event.get(e.event_id)
            else:
                new_id = anonymous.pop() if anonymous else None
            if new_id in taken:
                new_id = None
            if new_id is not None:
                taken.add(new_id)
            results.append(InboxAppend(id=new_id, duplicate=new_id is None))
        return results

    def claim_inbox(
        self,
        limit: int = settings.INBOX_DEFAULT_BATCH,
        *,
        lease_seconds: float = settings.INBOX_CLAIM_LEASE_SECONDS,
        max_id: int | None = None,
    ) -> list[InboxRow]:
        """Claim up to `limit` unprocessed rows, oldest first. Concurrent claimers never get
        the same row (SKIP LOCKED on Postgres, BEGIN IMMEDIATE on SQLite); a claim that is
        not marked processed within its own lease (`lease_seconds`, recorded with the claim)
        becomes claimable again."""
        now = self.clock()
        token = uuid.uuid4().hex
        w = webhook_inbox
        pending = select(w.c.id).where(
            w.c.processed_at.is_(None),
            or_(w.c.claimed_at.is_(None), w.c.lease_expires_at <= now),
        )
        if max_id is not None:
            pending = pending.where(w.c.id <= max_id)
        pending = pending.order_by(w.c.id).limit(limit).with_for_update(skip_locked=True)
        stmt = (
            update(w)
            .where(w.c.id.in_(pending.scalar_subquery()))
            .values(
                claimed_at=now,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                claim_token=token,
                attempts=w.c.attempts + 1,
            )
            .returning(*w.c)
        )
        with self._write(None) as c:
            rows = c.execute(stmt).all()
        return sorted(
            (
                InboxRow(
                    id=r.id,
                    invocation_id=r.invocation_id,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    ticket_id=r.ticket_id,
                    headers=dict(r.headers),
                    body=bytes(r.body),
                    received_at=r.received_at,
                    attempts=r.attempts,
                    claim_token=r.claim_token,
                )
                for r in rows
            ),
            key=lambda r: r.id,
        )

    def mark_inbox_processed(self, ids: Sequence[int], conn: Connection | None = None) -> None:
        if not ids:
            return
        w = webhook_inbox
        with self._write(conn) as c:
            for chunk in chunks(ids, settings.UPSERT_CHUNK_ROWS):
                c.execute(
                    update(w)
                    .where(self._in(w.c.id, chunk))
                    .values(processed_at=self.clock(), error=None)
                )

    def release_inbox(
        self, rows: Sequence[InboxRow], error: str, conn: Connection | None = None
    ) -> int:
        """Give claimed rows back with the reason, so the next drain retries them. Only
        rows still under the caller's claim: one whose lease ran out and that another
        drain claimed since stays with that drain. Returns how many were released."""
        w = webhook_inbox
        by_token: dict[str | None, list[int]] = {}
        for row in rows:
            by_token.setdefault(row.claim_token, []).append(row.id)
        released = 0
        with self._write(conn) as c:
            for token, ids in by_token.items():
                if token is None:
                    continue  # never claimed: nothing to give back
                released += c.execute(
                    update(w)
                    .where(self._in(w.c.id, ids), w.c.claim_token == token)
                    .values(
                        claimed_at=None, lease_expires_at=None, claim_token=None, error=error[:2000]
                    )
                ).rowcount
        return released

    def inbox_stats(self) -> dict[str, int]:
        w = webhook_inbox
        with self._read(None) as c:
            total, pending, max_id = c.execute(
                select(
                    func.count(),
                    func.count().filter(w.c.processed_at.is_(None)),
                    func.coalesce(func.max(w.c.id), 0),
                )
            ).one()
        return {"total": int(total), "pending": int(pending), "max_id": int(max_id)}

    def inbox_backlog(self) -> InboxBacklog:
        w = webhook_inbox
        unprocessed = w.c.processed_at.is_(None)
        claimable = or_(w.c.claimed_at.is_(None), w.c.lease_expires_at <= self.clock())
        with self._read(None) as c:
            pending, free, attempts, oldest = c.execute(
                select(
                    func.count(),
                    func.count().filter(claimable),
                    func.coalesce(func.sum(w.c.attempts), 0),
                    func.min(w.c.received_at),
                ).where(unprocessed)
            ).one()
            newest = c.execute(
                select(w.c.id, w.c.invocation_id, w.c.event_id, w.c.received_at)
                .where(unprocessed)
                .order_by(w.c.id.desc())
                .limit(1)
            ).first()
        delivery = None
        if newest is not None:
            # Zendesk's invocation and event ids are unique across accounts and time; a
            # delivery with neither is named by its arrival time and row id.
            delivery = (
                newest.invocation_id
                or newest.event_id
                or (f"{newest.received_at.isoformat()}#{newest.id}")
            )
        return InboxBacklog(
            pending=int(pending),
            claimable=int(free),
            attempts=int(attempts),
            oldest_received_at=oldest,
            newest_id=None if newest is None else int(newest.id),
            newest_delivery=delivery,
        )

    def inbox_pending_ids(self, after_id: int = 0, limit: int | None = None) -> list[int]:
        w = webhook_inbox
        query = select(w.c.id).where(w.c.processed_at.is_(None), w.c.id > after_id).order_by(w.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read(None) as c:
            return [int(i) for i in c.execute(query).scalars()]
