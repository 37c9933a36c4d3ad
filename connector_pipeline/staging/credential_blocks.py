"""The ledger's record of refused credentials (table `credential_failures`): what pauses
scheduled runs and sensors after an authentication failure (DESIGN.md decision 12)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector_pipeline.staging.schema import credential_failures
from connector_pipeline.staging.store import StagingStore, utcnow


@dataclass(frozen=True)
class CredentialFailure:
    system: str
    fingerprint: str
    message: str
    failed_at: datetime
    last_attempt_at: datetime


class CredentialBlocks:
    """Reads and writes `credential_failures` through a store's engine."""

    def __init__(self, store: StagingStore) -> None:
        self.store = store

    def record(
        self, system: str, fingerprint: str, message: str, at: datetime | None = None
    ) -> None:
        """The credentials with `fingerprint` were refused just now (replaces any earlier
        record for `system`)."""
        now = at or utcnow()
        values = {
            "system": system,
            "fingerprint": fingerprint,
            "message": message,
            "failed_at": now,
            "last_attempt_at": now,
        }
        module = postgresql if self.store.dialect == "postgresql" else sqlite
        stmt = module.insert(credential_failures).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[credential_failures.c.system],
            set_={k: v for k, v in values.items() if k != "system"},
        )
        with self.store.transaction() as conn:
            conn.execute(stmt)

    def clear(self, system: str | None = None) -> int:
        """Forget the failure of `system` (all systems when None); returns rows removed."""
        stmt = delete(credential_failures)
        if system is not None:
            stmt = stmt.where(credential_failures.c.system == system)
        with self.store.transaction() as conn:
            return int(conn.execute(stmt).rowcount or 0)

    def all(self) -> dict[str, CredentialFailure]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(credential_failures)).all()
        return {row.system: CredentialFailure(**row._mapping) for row in rows}

    def claim_attempt(self, system: str, every: timedelta, at: datetime | None = None) -> bool:
        """True for at most one caller per `every` while `system` stays refused: that
        caller may try to sign in once more. Atomic, so schedules and sensors ticking
        together still make one attempt."""
        now = at or utcnow()
        c = credential_failures
        with self.store.transaction() as conn:
            result = conn.execute(
                update(c)
                .where(c.c.system == system, c.c.last_attempt_at <= now - every)
                .values(last_attempt_at=now)
            )
        return bool(result.rowcount)
