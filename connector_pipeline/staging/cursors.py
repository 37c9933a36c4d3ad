"""sync_cursors: named watermarks and export cursors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Connection,
    select,
)

from connector_pipeline.staging.base import LedgerBase
from connector_pipeline.staging.rows import (
    utcnow,
)
from connector_pipeline.staging.schema import (
    sync_cursors,
)


class CursorTables(LedgerBase):
    """sync_cursors: named watermarks and export cursors."""

    def get_cursor(self, name: str, conn: Connection | None = None) -> str | None:
        with self._read(conn) as c:
            return c.execute(
                select(sync_cursors.c.value).where(sync_cursors.c.name == name)
            ).scalar()

    def set_cursor(self, name: str, value: str, conn: Connection | None = None) -> None:
        stmt = self._insert(sync_cursors).values(name=name, value=value, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[sync_cursors.c.name],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        with self._write(conn) as c:
            c.execute(stmt)

    def cursors(self, prefix: str = "") -> dict[str, tuple[str, datetime]]:
        with self._read(None) as c:
            rows = c.execute(
                select(sync_cursors.c.name, sync_cursors.c.value, sync_cursors.c.updated_at).where(
                    sync_cursors.c.name.startswith(prefix)
                )
            ).all()
        return {r.name: (r.value, r.updated_at) for r in rows}
