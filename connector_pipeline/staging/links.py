"""vendor_org_links and ticket_record_links: what was written where, with which content."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    select,
    update,
)

from connector_pipeline import settings
from connector_pipeline.domain import DELETED, vendor_rank
from connector_pipeline.staging.base import LedgerBase, chunks
from connector_pipeline.staging.rows import (
    TicketLinkRow,
    VendorLinkRow,
)
from connector_pipeline.staging.schema import (
    intacct_vendors,
    ticket_record_links,
    vendor_org_links,
)


class LinkTables(LedgerBase):
    """vendor_org_links and ticket_record_links: what was written where, with which content."""

    def upsert_vendor_links(
        self, rows: Iterable[VendorLinkRow], conn: Connection | None = None
    ) -> int:
        """Record outcomes of organization writes. Only the columns given are updated; a row
        without `source_object` and `vendor_id` can only update an existing link (ValueError
        otherwise). Returns the number of distinct links written."""
        return self._upsert_links(
            vendor_org_links,
            "external_id",
            [{**r, "external_id": r["external_id"].lower()} for r in rows],
            conn,
        )

    def vendor_links(
        self, external_ids: Sequence[str] | None = None, conn: Connection | None = None
    ) -> dict[str, dict[str, Any]]:
        query = select(vendor_org_links)
        if external_ids is not None:
            query = query.where(
                self._in(vendor_org_links.c.external_id, [e.lower() for e in external_ids])
            )
        with self._read(conn) as c:
            return {r.external_id: dict(r._mapping) for r in c.execute(query)}

    def upsert_ticket_links(
        self, rows: Iterable[TicketLinkRow], conn: Connection | None = None
    ) -> int:
        return self._upsert_links(ticket_record_links, "ticket_id", [dict(r) for r in rows], conn)

    def ticket_links(
        self, ticket_ids: Sequence[int] | None = None, conn: Connection | None = None
    ) -> dict[int, dict[str, Any]]:
        query = select(ticket_record_links)
        if ticket_ids is not None:
            query = query.where(self._in(ticket_record_links.c.ticket_id, list(ticket_ids)))
        with self._read(conn) as c:
            return {r.ticket_id: dict(r._mapping) for r in c.execute(query)}

    def vendors_by_organization(
        self, conn: Connection | None = None
    ) -> dict[int, tuple[str, str, int, bool]]:
        """organization id -> (source_object, vendor_id, RECORDNO, deleted) for every linked
        organization whose Intacct record is staged (the best `vendor_rank` when a
        VENDORID has several)."""
        v, link = intacct_vendors, vendor_org_links
        query = (
            select(
                link.c.organization_id, v.c.source_object, v.c.vendor_id, v.c.record_no, v.c.status
            )
            .join(
                v,
                and_(v.c.source_object == link.c.source_object, v.c.vendor_id == link.c.vendor_id),
            )
            .where(link.c.organization_id.is_not(None))
        )
        with self._read(conn) as c:
            rows = sorted(c.execute(query), key=lambda r: vendor_rank(r.status, int(r.record_no)))
        # The preferred row comes last and overwrites the others.
        return {
            int(r.organization_id): (
                r.source_object,
                r.vendor_id,
                int(r.record_no),
                r.status == DELETED,
            )
            for r in rows
        }

    def _upsert_links(
        self, table: Table, key: str, rows: list[dict[str, Any]], conn: Connection | None
    ) -> int:
        if not rows:
            return 0
        # Later rows for a key refine earlier ones, as if applied one after another.
        merged: dict[Any, dict[str, Any]] = {}
        for r in rows:
            merged.setdefault(r[key], {}).update(r)
        required = {
            col.name
            for col in table.columns
            if not col.nullable and col.name != key and col.default is None
        }
        written = 0
        with self._write(conn) as c:
            # Rows with the same set of columns share one executemany.
            by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for r in merged.values():
                by_shape.setdefault(tuple(sorted(r)), []).append(r)
            for shape, group in by_shape.items():
                for chunk in chunks(group, settings.UPSERT_CHUNK_ROWS):
                    if required - set(shape):
                        # NOT NULL is checked on the proposed row before ON CONFLICT, so a
                        # partial row can only update an existing link, never insert one.
                        self._update_existing(table, key, shape, chunk, c)
                    else:
                        stmt = self._insert(table)
                        updates = {col: stmt.excluded[col] for col in shape if col != key}
                        stmt = (
                            stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=updates)
                            if updates
                            else stmt.on_conflict_do_nothing(index_elements=[table.c[key]])
                        )
                        c.execute(stmt, chunk)
                    written += len(chunk)
        return written

    def _update_existing(
        self,
        table: Table,
        key: str,
        shape: tuple[str, ...],
        rows: list[dict[str, Any]],
        c: Connection,
    ) -> None:
        keys = [r[key] for r in rows]
        found = set(c.execute(select(table.c[key]).where(self._in(table.c[key], keys))).scalars())
        if missing := [k for k in keys if k not in found]:
            raise ValueError(
                f"{table.name}: no link yet for {missing[:10]}; a new link needs "
                f"{sorted(col.name for col in table.columns if not col.nullable)}"
            )
        values: dict[str, Any] = {col: bindparam(f"v_{col}") for col in shape if col != key}
        if values:
            c.execute(
                update(table).where(table.c[key] == bindparam("k")).values(values),
                [{"k": r[key], **{f"v_{col}": r[col] for col in values}} for r in rows],
            )
