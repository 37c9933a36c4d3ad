"""Migrations from an empty database produce exactly the tables of schema.py."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import JSON, LargeBinary, column, create_engine, insert, inspect, table

from connector_pipeline import settings
from connector_pipeline.cli import main as cli
from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.schema import metadata
from connector_pipeline.staging.store import head_revision, normalize_url
from connector_pipeline.staging.types import UTCDateTime
from connector_pipeline_tests.staging.children import children

LEDGER_TABLES = {
    "intacct_vendors",
    "zendesk_tickets",
    "vendor_org_links",
    "ticket_record_links",
    "webhook_inbox",
    "sync_cursors",
    "quarantine",
    "intacct_hints",
    "intacct_open_items",
    "intacct_payments",
    "standing_links",
    "credential_failures",
}
CONCURRENT_OPENERS = 8


def _tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _schema_differences(store: StagingStore) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_schema_lists_every_ledger_table() -> None:
    assert set(metadata.tables) == LEDGER_TABLES


def test_upgrade_from_empty_matches_schema(ledger_url: str) -> None:
    assert _tables(ledger_url) == set()
    store = StagingStore.open(ledger_url, migrate=False)
    try:
        assert store.current_revision() is None
        assert store.upgrade() is True
        assert store.current_revision() == head_revision()
        assert _tables(ledger_url) == LEDGER_TABLES | {"alembic_version"}
        assert _schema_differences(store) == []
        assert store.upgrade() is False  # already current
    finally:
        store.dispose()


def test_downgrade_to_base_and_upgrade_again(ledger_url: str) -> None:
    store = StagingStore.open(ledger_url)
    try:
        store.set_cursor("intacct.vendors.watermark", "before")
        store.downgrade("base")
        assert store.current_revision() is None
        assert _tables(ledger_url) == {"alembic_version"}
        assert store.upgrade() is True
        assert _schema_differences(store) == []
        assert store.get_cursor("intacct.vendors.watermark") is None  # a fresh ledger
        store.set_cursor("intacct.vendors.watermark", "after")
        assert store.get_cursor("intacct.vendors.watermark") == "after"
    finally:
        store.dispose()


def test_inbox_claims_from_before_lease_expiry_lapse(ledger_url: str) -> None:
    """Revision 0002 adds a per-claim lease; claims made under 0001 must not stay stuck."""
    store = StagingStore.open(ledger_url, migrate=False)
    try:
        store.upgrade("0001")
        claimed = datetime(2026, 11, 1, tzinfo=UTC)
        # The inbox as revision 0001 had it: no lease_expires_at column yet.
        inbox_0001 = table(
            "webhook_inbox",
            column("invocation_id"),
            column("headers", JSON()),
            column("body", LargeBinary()),
            column("received_at", UTCDateTime()),
            column("claimed_at", UTCDateTime()),
            column("claim_token"),
            column("attempts"),
        )
        with store.transaction() as conn:
            conn.execute(
                insert(inbox_0001).values(
                    invocation_id="old",
                    headers={},
                    body=b"{}",
                    received_at=claimed,
                    claimed_at=claimed,
                    claim_token="t",
                    attempts=1,
                )
            )
        store.upgrade()
        (row,) = store.claim_inbox(10)
        assert (row.invocation_id, row.attempts) == ("old", 2)
    finally:
        store.dispose()


def test_cli_db_upgrade(ledger_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "upgrade", "--url", ledger_url])
    assert result.exit_code == 0, result.output
    assert f"ledger at revision {head_revision()}" in result.output
    assert "already current" not in result.output
    assert _tables(ledger_url) == LEDGER_TABLES | {"alembic_version"}
    # The URL can come from the environment, as everywhere else.
    result = runner.invoke(
        cli, ["db", "upgrade"], env={settings.ENV_STAGING_DATABASE_URL: ledger_url}
    )
    assert result.exit_code == 0, result.output
    assert "(already current)" in result.output


def test_opening_a_new_sqlite_file_waits_while_another_process_sets_it_up(
    tmp_path: Path,
) -> None:
    # Switching a file to WAL does not wait on SQLite's busy timeout: an opener that met
    # another process's write lock on a brand-new file failed at once with "database is
    # locked" (seen when several processes first used one ledger together).
    path = tmp_path / "ledger.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, other.rollback)
    release.start()
    try:
        store = StagingStore.open(f"sqlite:///{path}")
        try:
            assert store.current_revision() == head_revision()
        finally:
            store.dispose()
    finally:
        release.join()
        other.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_concurrent_first_use_migrates_once(ledger_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    with children(tmp_path) as procs:
        for i in range(CONCURRENT_OPENERS):
            procs.start(
                f"opener-{i}",
                "open-store",
                "--url",
                ledger_url,
                "--go",
                str(go),
                "--out",
                str(tmp_path / f"opener-{i}.json"),
            )
        go.touch()
        procs.wait_all()
        for child in procs.started:
            assert "error" not in child.stderr.lower(), child.stderr
    results = [
        json.loads((tmp_path / f"opener-{i}.json").read_text()) for i in range(CONCURRENT_OPENERS)
    ]
    assert sorted(r["migrations"] for r in results) == [0] * (CONCURRENT_OPENERS - 1) + [1]
    assert {r["revision"] for r in results} == {head_revision()}
    store = StagingStore.open(ledger_url)
    try:
        assert _schema_differences(store) == []
    finally:
        store.dispose()
