"""zendesk_tickets: staged tickets, and which of them an Intacct load must consider."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    or_,
    select,
)

from connector_pipeline import settings
from connector_pipeline.domain import TicketRow
from connector_pipeline.staging.base import chunks
from connector_pipeline.staging.cursors import CursorTables
from connector_pipeline.staging.rows import (
    UpsertCounts,
    utcnow,
)
from connector_pipeline.staging.schema import (
    ticket_record_links,
    zendesk_tickets,
)


class TicketTables(CursorTables):
    """zendesk_tickets: staged tickets, and which of them an Intacct load must consider."""

    def upsert_tickets(
        self,
        rows: Iterable[TicketRow],
        *,
        cursor: tuple[str, str] | None = None,
        conn: Connection | None = None,
    ) -> UpsertCounts:
        """Stage tickets, latest wins: a row replaces the stored one only when its
        `version` is newer, or equal with different content. Older rows count as stale."""
        counts = UpsertCounts()
        now = utcnow()
        t = zendesk_tickets
        stmt = self._insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.ticket_id],
            set_={
                col: stmt.excluded[col]
                for col in (
                    "organization_id",
                    "status",
                    "updated_at",
                    "generated_timestamp",
                    "version",
                    "raw",
                    "content_hash",
                    "source",
                    "staged_at",
                )
            },
            # Guards against a concurrent writer between the version lookup and this write.
            where=or_(
                stmt.excluded.version > t.c.version,
                and_(
                    stmt.excluded.version == t.c.version,
                    stmt.excluded.content_hash != t.c.content_hash,
                ),
            ),
        )
        with self._write(conn) as c:
            for chunk in chunks(rows, settings.UPSERT_CHUNK_ROWS):
                chunk = _latest_per_ticket(chunk)
                known = {
                    r.ticket_id: (r.version, r.content_hash)
                    for r in c.execute(
                        select(t.c.ticket_id, t.c.version, t.c.content_hash).where(
                            self._in(t.c.ticket_id, [r["ticket_id"] for r in chunk])
                        )
                    )
                }
                new = changed = unchanged = stale = 0
                to_write = []
                for r in chunk:
                    have = known.get(r["ticket_id"])
                    if have is None:
                        new += 1
                    elif r["version"] < have[0]:
                        stale += 1
                        continue
                    elif r["content_hash"] != have[1]:
                        changed += 1
                    else:
                        unchanged += 1
                        # A newer version is still stored, so the held version never lags
                        # and an older row arriving later stays stale.
                        if r["version"] == have[0]:
                            continue
                    to_write.append({**r, "staged_at": now})
                counts += UpsertCounts(new, changed, unchanged, stale)
                if to_write:
                    c.execute(stmt, to_write)
            if cursor is not None:
                self.set_cursor(*cursor, conn=c)
        return counts

    def tickets(
        self, ticket_ids: Sequence[int] | None = None, conn: Connection | None = None
    ) -> list[dict[str, Any]]:
        query = select(zendesk_tickets).order_by(zendesk_tickets.c.ticket_id)
        if ticket_ids is not None:
            query = query.where(self._in(zendesk_tickets.c.ticket_id, list(ticket_ids)))
        with self._read(conn) as c:
            return [dict(r._mapping) for r in c.execute(query)]

    def tickets_to_load(
        self,
        *,
        full: bool = False,
        after: int | None = None,
        limit: int | None = None,
        conn: Connection | None = None,
    ) -> list[dict[str, Any]]:
        """Staged tickets an Intacct load must consider: never written, failed, or whose
        staged content is not the content the last write carried. `full` returns every
        staged ticket.

        Keyset paging by ticket id (`after` the last id of the previous page, at most
        `limit` rows) keeps a load's memory at one page whatever the backlog: a ticket
        whose write failed stays behind the keyset, so paging always moves forward.

        The choice rests on content, not time: a version staged while another run was
        still writing an older one differs from the `staged_hash` that run records, so it
        is picked up by the next load whatever the clocks say."""
        t, link = zendesk_tickets, ticket_record_links
        query = (
            select(t)
            .select_from(t.outerjoin(link, link.c.ticket_id == t.c.ticket_id))
            .order_by(t.c.ticket_id)
        )
        if not full:
            query = query.where(
                or_(
                    link.c.ticket_id.is_(None),
                    link.c.written_hash.is_(None),
                    link.c.staged_hash.is_(None),
                    link.c.staged_hash != t.c.content_hash,
                )
            )
        if after is not None:
            query = query.where(t.c.ticket_id > after)
        if limit is not None:
            query = query.limit(limit)
        with self._read(conn) as c:
            return [dict(r._mapping) for r in c.execute(query)]


def _latest_per_ticket(rows: list[TicketRow]) -> list[TicketRow]:
    best: dict[int, TicketRow] = {}
    for r in rows:
        have = best.get(r["ticket_id"])
        if have is None or r["version"] >= have["version"]:
            best[r["ticket_id"]] = r
    return list(best.values())
