"""A throwaway Postgres database for tests and benchmarks: created empty, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector_pipeline.staging.store import normalize_url


@contextmanager
def scratch_postgres_database(server_url: str, prefix: str = "mlc_scratch") -> Iterator[str]:
    """Yield the URL of a new, empty database on the server of `server_url`; drop it (and
    end its sessions) afterwards, whatever happened."""
    base = make_url(normalize_url(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
