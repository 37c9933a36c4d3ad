"""The ledger's financial standing: staged bills / invoices and payments, and the standing
last written to each organization."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from connector_pipeline.domain import OpenItemRow, PaymentRow
from connector_pipeline.staging.schema import intacct_open_items, intacct_payments, standing_links
from connector_pipeline.staging.store import StagingStore, utcnow

# Keys per DELETE statement: well under SQLite's bound-parameter limit.
_DELETE_CHUNK = 500


class StandingLedger:
    """Reads and writes the standing tables through a store's engine."""

    def __init__(self, store: StagingStore) -> None:
        self.store = store

    def _insert(self, table: Table) -> Any:
        module = postgresql if self.store.dialect == "postgresql" else sqlite
        return module.insert(table)

    def _upsert(
        self,
        table: Table,
        rows: Sequence[dict[str, Any]],
        cursor: tuple[str, str] | None,
        conn: Connection,
    ) -> int:
        """Replace the staged rows by key; set `cursor` in the same transaction."""
        if rows:
            now = utcnow()
            stmt = self._insert(table)
            keys = {"source_object", "record_no"}
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.source_object, table.c.record_no],
                set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
            )
            conn.execute(stmt, [{**r, "staged_at": now} for r in rows])
        if cursor is not None:
            self.store.set_cursor(*cursor, conn=conn)
        return len(rows)

    def upsert_open_items(
        self, rows: Sequence[OpenItemRow], *, cursor: tuple[str, str] | None, conn: Connection
    ) -> int:
        return self._upsert(intacct_open_items, [dict(r) for r in rows], cursor, conn)

    def upsert_payments(
        self, rows: Sequence[PaymentRow], *, cursor: tuple[str, str] | None, conn: Connection
    ) -> int:
        return self._upsert(intacct_payments, [dict(r) for r in rows], cursor, conn)

    def remove_absent_documents(self, source_object: str, present: set[int]) -> int:
        return self._remove_absent(intacct_open_items, source_object, present)

    def remove_absent_payments(self, source_object: str, present: set[int]) -> int:
        return self._remove_absent(intacct_payments, source_object, present)

    def _remove_absent(self, table: Table, source_object: str, present: set[int]) -> int:
        """After a complete read: drop the staged rows Intacct no longer returned (a bill
        deleted in Intacct must stop counting). The ledger only mirrors Intacct here."""
        with self.store.transaction() as conn:
            staged = conn.execute(
                select(table.c.record_no).where(table.c.source_object == source_object)
            ).scalars()
            gone = [n for n in staged if n not in present]
            for offset in range(0, len(gone), _DELETE_CHUNK):
                conn.execute(
                    delete(table).where(
                        table.c.source_object == source_object,
                        table.c.record_no.in_(gone[offset : offset + _DELETE_CHUNK]),
                    )
                )
        return len(gone)

    def open_items(
        self, source_object: str, open_states: Collection[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Staged documents in an open state, by party."""
        t = intacct_open_items
        query = select(t).where(t.c.source_object == source_object, t.c.state.in_(open_states))
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with self.store.engine.connect() as conn:
            for row in conn.execute(query):
                out[row.party_id].append(dict(row._mapping))
        return dict(out)

    def last_payments(
        self, source_object: str, void_states: Collection[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each party's latest payment date (as a one-item payment list), leaving out
        payments in a void state."""
        t = intacct_payments
        query = (
            select(t.c.party_id, func.max(t.c.paid_on).label("paid_on"))
            .where(
                t.c.source_object == source_object,
                t.c.state.not_in(void_states),
                t.c.paid_on.is_not(None),
            )
            .group_by(t.c.party_id)
        )
        with self.store.engine.connect() as conn:
            return {
                row.party_id: [{"paid_on": _as_date(row.paid_on), "state": ""}]
                for row in conn.execute(query)
            }

    def links(self) -> dict[str, dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return {r.external_id: dict(r._mapping) for r in conn.execute(select(standing_links))}

    def record_writes(self, rows: Iterable[dict[str, Any]], conn: Connection) -> int:
        """Upsert one link per organization written (keys folded to lower case). A failed
        write keeps the last good hash so it is tried again."""
        rows = [{**r, "external_id": str(r["external_id"]).lower()} for r in rows]
        for row in rows:
            stmt = self._insert(standing_links).values(**row)
            stmt = stmt.on_conflict_do_update(
                index_elements=[standing_links.c.external_id],
                set_={k: stmt.excluded[k] for k in row if k != "external_id"},
            )
            conn.execute(stmt)
        return len(rows)


def _as_date(value: Any) -> date | None:
    # SQLite hands back max() of a Date column as text.
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])
