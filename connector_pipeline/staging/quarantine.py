"""quarantine: what could not be written and why, until it is."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    select,
    update,
)

from connector_pipeline import settings
from connector_pipeline.staging.base import LedgerBase, chunks
from connector_pipeline.staging.rows import (
    QuarantineItem,
    utcnow,
)
from connector_pipeline.staging.schema import (
    quarantine,
)


class QuarantineTables(LedgerBase):
    """quarantine: what could not be written and why, until it is."""

    def quarantine_add(
        self,
        kind: str,
        key: str,
        reason: str,
        payload: Any = None,
        conn: Connection | None = None,
    ) -> None:
        """Put a record in quarantine, or count one more failed attempt if it is there;
        a resolved entry that fails again is reopened."""
        self.quarantine_add_many(kind, [(key, reason, payload)], conn=conn)

    def quarantine_add_many(
        self,
        kind: str,
        entries: Iterable[tuple[str, str, Any]],
        conn: Connection | None = None,
    ) -> None:
        """`quarantine_add` for many (key, reason, payload) entries of one kind at once."""
        now = utcnow()
        q = quarantine
        rows = {
            str(key): {
                "kind": kind,
                "key": str(key),
                "reason": reason[:4000],
                # Whatever the payload holds (datetimes, decimals), recording it must not
                # fail: the quarantine is where things go when everything else did.
                "payload": json.loads(json.dumps(payload, default=str)),
                "attempts": 1,
                "first_seen": now,
                "last_seen": now,
                "resolved_at": None,
            }
            for key, reason, payload in entries
        }
        if not rows:
            return
        stmt = self._insert(q)
        stmt = stmt.on_conflict_do_update(
            index_elements=[q.c.kind, q.c.key],
            set_={
                "reason": stmt.excluded.reason,
                "payload": stmt.excluded.payload,
                "attempts": q.c.attempts + 1,
                "last_seen": stmt.excluded.last_seen,
                "resolved_at": None,
            },
        )
        with self._write(conn) as c:
            for chunk in chunks(list(rows.values()), settings.UPSERT_CHUNK_ROWS):
                c.execute(stmt, chunk)

    def quarantine_list(
        self, kind: str | None = None, *, include_resolved: bool = False
    ) -> list[QuarantineItem]:
        q = quarantine
        query = select(q).order_by(q.c.kind, q.c.key)
        if kind is not None:
            query = query.where(q.c.kind == kind)
        if not include_resolved:
            query = query.where(q.c.resolved_at.is_(None))
        with self._read(None) as c:
            return [QuarantineItem(**r._mapping) for r in c.execute(query)]

    def quarantine_resolve(
        self, kind: str, keys: Iterable[str], conn: Connection | None = None
    ) -> int:
        q = quarantine
        keys = [str(k) for k in keys]
        resolved = 0
        with self._write(conn) as c:
            for chunk in chunks(keys, settings.UPSERT_CHUNK_ROWS):
                resolved += c.execute(
                    update(q)
                    .where(q.c.kind == kind, self._in(q.c.key, chunk), q.c.resolved_at.is_(None))
                    .values(resolved_at=utcnow())
                ).rowcount
        return resolved

    def quarantine_count(self, kind: str | None = None) -> int:
        where: list[ColumnElement[bool]] = [quarantine.c.resolved_at.is_(None)]
        if kind is not None:
            where.append(quarantine.c.kind == kind)
        return self.count(quarantine, *where)
