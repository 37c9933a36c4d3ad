"""`StagingStore`: the only code that reads or writes the ledger.

Every write is an idempotent upsert (ON CONFLICT on both SQLite and Postgres). A cursor
given to a write is stored in the same transaction as the rows it covers, so a crash can
never leave a cursor ahead of its data. Methods take an optional `conn` so callers can
compose several writes into one transaction (`with store.transaction() as conn: ...`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from connector_pipeline import settings
from connector_pipeline.staging.cursors import CursorTables
from connector_pipeline.staging.engine import (
    alembic_config,
    create_staging_engine,
    head_revision,
    normalize_url,
)
from connector_pipeline.staging.inbox import InboxTables
from connector_pipeline.staging.links import LinkTables
from connector_pipeline.staging.overview import LedgerOverview
from connector_pipeline.staging.quarantine import QuarantineTables
from connector_pipeline.staging.rows import (
    InboxAppend,
    InboxBacklog,
    InboxEvent,
    InboxRow,
    LedgerError,
    QuarantineItem,
    TicketLinkRow,
    UpsertCounts,
    VendorLinkRow,
    utcnow,
)
from connector_pipeline.staging.tickets import TicketTables
from connector_pipeline.staging.vendors import VendorTables

# Callers import these from here; the table groups live in their own modules.
__all__ = [
    "InboxAppend",
    "InboxBacklog",
    "InboxEvent",
    "InboxRow",
    "LedgerError",
    "QuarantineItem",
    "StagingStore",
    "TicketLinkRow",
    "UpsertCounts",
    "VendorLinkRow",
    "create_staging_engine",
    "head_revision",
    "normalize_url",
    "utcnow",
]

log = logging.getLogger(__name__)

_PG_MIGRATION_LOCK = 0x6D6C636F  # "mlco": advisory lock id held while migrating


class StagingStore(
    VendorTables,
    TicketTables,
    LinkTables,
    InboxTables,
    QuarantineTables,
    LedgerOverview,
    CursorTables,
):
    """The ledger. Open with `StagingStore.open(url)`; migrations run on first use. Each
    table group's methods live in its own module (cursors, vendors, tickets, links,
    inbox, quarantine, overview); this class joins them and owns the lifecycle."""

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> StagingStore:
        store = cls(create_staging_engine(url or settings.staging_database_url()), clock)
        if migrate:
            store.upgrade()
        return store

    def dispose(self) -> None:
        self.engine.dispose()

    def current_revision(self) -> str | None:
        # A read transaction: on SQLite, opening the store must not wait for a writer.
        with self._read(None) as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> bool:
        """Apply pending migrations; safe when several processes start at once.
        Returns True when a migration ran."""
        if revision == "head" and self.current_revision() == head_revision():
            return False
        with self.engine.begin() as conn:
            # Serialize concurrent first uses: BEGIN IMMEDIATE on SQLite, a lock on Postgres.
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            if revision == "head" and MigrationContext.configure(conn).get_current_revision() == (
                head_revision()
            ):
                return False
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        log.info("ledger migrated to %s", revision)
        return True

    def downgrade(self, revision: str) -> None:
        with self.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
