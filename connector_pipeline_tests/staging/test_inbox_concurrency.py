"""Two processes append webhook deliveries while two others claim and process them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.schema import webhook_inbox
from connector_pipeline_tests.staging.children import children

OWN_PER_APPENDER = 2_000
SHARED = 300  # sent by both appenders, so each is a duplicate for one of them
CLAIMERS = 2


def test_appenders_and_claimers_in_separate_processes(ledger_url: str, tmp_path: Path) -> None:
    # Migrate first: the concurrent first use has a test of its own.
    StagingStore.open(ledger_url).dispose()
    go, done = tmp_path / "go", tmp_path / "done"
    common = ["--url", ledger_url, "--go", str(go)]
    with children(tmp_path) as procs:
        appenders = [
            procs.start(
                name,
                "append",
                *common,
                "--out",
                str(tmp_path / f"{name}.json"),
                "--prefix",
                name,
                "--count",
                str(OWN_PER_APPENDER),
                "--shared",
                str(SHARED),
            )
            for name in ("appender-a", "appender-b")
        ]
        for i in range(CLAIMERS):
            procs.start(
                f"claimer-{i}",
                "claim",
                *common,
                "--done",
                str(done),
                "--out",
                str(tmp_path / f"claimer-{i}.json"),
            )
        go.touch()
        for child in appenders:
            assert child.wait() == 0, child.stderr
        done.touch()
        procs.wait_all()
        for child in procs.started:
            assert "locked" not in child.stderr.lower(), child.stderr
            assert "error" not in child.stderr.lower(), child.stderr

    appended = [json.loads((tmp_path / f"appender-{n}.json").read_text()) for n in "ab"]
    claims = [json.loads((tmp_path / f"claimer-{i}.json").read_text()) for i in range(CLAIMERS)]
    claimed = [row for c in claims for row in c["claimed"]]
    # The claimers really ran alongside the appenders, not only after them.
    assert sum(c["while_appending"] for c in claims) > 0

    # Each delivery is stored once: every shared id is new for exactly one appender.
    new_ids = {inv: row_id for a in appended for inv, row_id in a["new"].items()}
    assert len(new_ids) == sum(len(a["new"]) for a in appended) == 2 * OWN_PER_APPENDER + SHARED
    assert sorted(d for a in appended for d in a["duplicates"]) == sorted(
        f"shared-{i}" for i in range(SHARED)
    )

    # Every stored row was claimed exactly once, by one claimer, on its first attempt.
    claim_counts = Counter(row_id for row_id, _, _ in claimed)
    assert set(claim_counts) == set(new_ids.values())
    assert max(claim_counts.values()) == 1
    assert {inv for _, inv, _ in claimed} == set(new_ids)
    assert {attempts for _, _, attempts in claimed} == {1}

    store = StagingStore.open(ledger_url)
    try:
        assert store.inbox_stats() == {
            "total": len(new_ids),
            "pending": 0,
            "max_id": max(new_ids.values()),
        }
        with store.engine.connect() as conn:
            stored = conn.execute(select(webhook_inbox.c.invocation_id)).scalars().all()
        assert sorted(stored) == sorted(new_ids)
    finally:
        store.dispose()
