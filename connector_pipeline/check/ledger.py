"""`ml-connector check`, ledger row: the staging database is reachable and migrated.

Reads only: a SQLite file that does not exist yet is reported, not created."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from connector_pipeline import settings
from connector_pipeline.check.rows import CheckRow, failed, passed, warned
from connector_pipeline.staging.store import StagingStore, create_staging_engine, head_revision

SYSTEM = "ledger"
CHECK = "reachable and migrated"


def check_ledger(url: str) -> list[CheckRow]:
    try:
        parsed = make_url(url)
    except Exception as exc:
        return [
            failed(
                SYSTEM,
                CHECK,
                f"not a database URL: {exc}",
                f"fix {settings.ENV_STAGING_DATABASE_URL}",
            )
        ]
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database))
        if not path.exists():
            return [
                warned(
                    SYSTEM,
                    CHECK,
                    f"{shown}: not created yet (the first run creates it)",
                    "or create it now with `ml-connector db upgrade`",
                )
            ]
    store = StagingStore(create_staging_engine(url))
    try:
        current = store.current_revision()
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return [
            failed(
                SYSTEM,
                CHECK,
                f"{shown}: {reason}",
                f"check {settings.ENV_STAGING_DATABASE_URL} and that the database server is "
                "running and reachable",
            )
        ]
    finally:
        store.dispose()
    head = head_revision()
    if current != head:
        return [
            warned(
                SYSTEM,
                CHECK,
                f"{shown}: at revision {current or 'none'}, code expects {head}",
                "run `ml-connector db upgrade` (runs also migrate on first use)",
            )
        ]
    return [passed(SYSTEM, CHECK, f"{shown} at revision {head}")]
