"""The production shape on one machine, as README "Running it for real" describes it:
Dagster's storage on Postgres, `dagster-webserver` and `dagster-daemon` as separate
processes (each starting its own code server from workspace.yaml). Used by
`ml-connector demo --db postgres` and by the end-to-end test of that shape."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "dagster.yaml"
WORKSPACE = REPO_ROOT / "workspace.yaml"
# The variable the Postgres storage section of dagster.yaml reads.
ENV_DAGSTER_PG_URL = "DAGSTER_PG_URL"
POSTGRES_STORAGE = """
# Dagster's runs, events and schedules on Postgres (written by ml-connector).
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
"""


def dagster_postgres_url(url: str) -> str:
    """A URL dagster-postgres accepts: plain `postgresql://` (it picks its own driver)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def write_instance_config(dagster_home: Path, *, postgres: bool) -> Path:
    """`dagster.yaml` for this home: the repository's template, with the Postgres storage
    section when asked for."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text(TEMPLATE.read_text() + (POSTGRES_STORAGE if postgres else ""))
    return path


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def start_webserver(
    env: Mapping[str, str], port: int, host: str = "127.0.0.1"
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [_bin("dagster-webserver"), "-w", str(WORKSPACE), "-h", host, "-p", str(port)],
        env=dict(env),
        cwd=REPO_ROOT,
        # A group of its own: Ctrl-C in a terminal reaches the supervisor only, which
        # stops this process and, through it, its code server.
        start_new_session=True,
    )


def start_daemon(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [_bin("dagster-daemon"), "run", "-w", str(WORKSPACE)],
        env=dict(env),
        cwd=REPO_ROOT,
        start_new_session=True,
    )


def database_url(server_url: str, name: str, *, fresh: bool) -> str:
    """The URL of database `name` on the server of `server_url`, created when missing; with
    `fresh`, dropped and created empty first."""
    from sqlalchemy import create_engine, text

    from connector_pipeline.staging.store import normalize_url

    base = make_url(normalize_url(server_url))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if fresh:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)
