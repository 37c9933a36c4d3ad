"""intacct_vendors: staged Intacct records, and what a complete read found gone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    select,
)

from connector_pipeline import settings
from connector_pipeline.domain import DELETED, VendorRow
from connector_pipeline.staging.base import chunks
from connector_pipeline.staging.cursors import CursorTables
from connector_pipeline.staging.rows import (
    UpsertCounts,
    utcnow,
)
from connector_pipeline.staging.schema import (
    intacct_vendors,
)


class VendorTables(CursorTables):
    """intacct_vendors: staged Intacct records, and what a complete read found gone."""

    def upsert_vendors(
        self,
        rows: Iterable[VendorRow],
        *,
        cursor: tuple[str, str] | None = None,
        conn: Connection | None = None,
    ) -> UpsertCounts:
        """Stage Intacct records; unchanged content (same hash) is left untouched. With
        `cursor=(name, value)` the cursor is stored in the same transaction."""
        counts = UpsertCounts()
        now = utcnow()
        v = intacct_vendors
        stmt = self._insert(v)
        stmt = stmt.on_conflict_do_update(
            index_elements=[v.c.source_object, v.c.record_no],
            set_={
                col: stmt.excluded[col]
                for col in (
                    "vendor_id",
                    "name",
                    "status",
                    "when_modified",
                    "raw",
                    "content_hash",
                    "staged_at",
                )
            },
            # Guards against a concurrent writer between the hash lookup and this write.
            where=v.c.content_hash != stmt.excluded.content_hash,
        )
        with self._write(conn) as c:
            for chunk in chunks(rows, settings.UPSERT_CHUNK_ROWS):
                chunk = _last_per_key(chunk, _vendor_key)
                known = self._vendor_hashes(c, chunk)
                # Unchanged rows are not sent at all: a re-load of an unchanged source then
                # costs one indexed lookup per chunk instead of a write per row.
                fresh = [r for r in chunk if known.get(_vendor_key(r)) != r["content_hash"]]
                new = sum(1 for r in fresh if _vendor_key(r) not in known)
                counts += UpsertCounts(new, len(fresh) - new, len(chunk) - len(fresh))
                if fresh:
                    c.execute(stmt, [{**r, "staged_at": now} for r in fresh])
            if cursor is not None:
                self.set_cursor(*cursor, conn=c)
        return counts

    def _vendor_hashes(self, c: Connection, chunk: list[VendorRow]) -> dict[tuple[str, int], str]:
        """Stored content hashes for the chunk's keys. One query per source object with a
        plain IN on record_no: a row-value IN over both key columns is not served by the
        primary key index on Postgres and scans the whole table."""
        v = intacct_vendors
        by_object: dict[str, list[int]] = {}
        for r in chunk:
            by_object.setdefault(r["source_object"], []).append(r["record_no"])
        known: dict[tuple[str, int], str] = {}
        for source_object, record_nos in by_object.items():
            query = select(v.c.record_no, v.c.content_hash).where(
                v.c.source_object == source_object, self._in(v.c.record_no, record_nos)
            )
            known.update(((source_object, n), h) for n, h in c.execute(query))
        return known

    def vendor_statuses(self, source_object: str) -> dict[int, str]:
        """RECORDNO -> status of every staged record of `source_object`."""
        v = intacct_vendors
        with self._read(None) as c:
            rows = c.execute(
                select(v.c.record_no, v.c.status).where(v.c.source_object == source_object)
            )
            return {int(n): str(status) for n, status in rows}

    def mark_vendors_deleted(
        self, source_object: str, record_nos: Sequence[int], *, conn: Connection | None = None
    ) -> int:
        """Mark staged records as gone from Intacct (status `DELETED`). Their content
        hash is cleared too, so should such a record ever be read again it is staged again,
        whatever its content."""
        v = intacct_vendors
        marked = 0
        with self._write(conn) as c:
            for chunk in chunks(record_nos, settings.UPSERT_CHUNK_ROWS):
                result = c.execute(
                    v.update()
                    .where(v.c.source_object == source_object, self._in(v.c.record_no, chunk))
                    .values(status=DELETED, content_hash=DELETED, staged_at=utcnow())
                )
                marked += result.rowcount
        return marked

    def vendors(
        self, source_objects: Sequence[str] | None = None, conn: Connection | None = None
    ) -> list[dict[str, Any]]:
        query = select(intacct_vendors).order_by(
            intacct_vendors.c.source_object, intacct_vendors.c.record_no
        )
        if source_objects:
            query = query.where(intacct_vendors.c.source_object.in_(list(source_objects)))
        with self._read(conn) as c:
            return [dict(r._mapping) for r in c.execute(query)]


def _vendor_key(row: VendorRow) -> tuple[str, int]:
    return (row["source_object"], row["record_no"])


def _last_per_key(rows: list[Any], key: Any) -> list[Any]:
    """One row per key (the last one given): ON CONFLICT cannot touch a row twice."""
    return list({key(r): r for r in rows}.values())
