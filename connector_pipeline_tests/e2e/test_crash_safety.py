"""Crash safety: a run killed with SIGKILL after a write reached the service but before
its outcome was recorded in the ledger leaves no duplicate behind when it runs again
(DESIGN.md decision 4).

The run is a real `dagster asset materialize` process. The sandboxes are slowed down
through their fault API at the right moment, so the kill lands after the write and
before the link record, every time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from connector_pipeline.defs.tickets import intacct_ticket_records, zendesk_tickets
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
from connector_pipeline_tests.e2e.harness import (
    TICKET_OBJECT,
    Pipeline,
    count_by_external_id,
    pipeline,
)
from connector_pipeline_tests.e2e.test_full_sync import metadata, ticket_range_tags
from connector_pipeline_tests.support import REPO_ROOT, stop_process

WAIT_S = 120
HANG_MS = 600_000


def start_materialize(p: Pipeline, asset: str, home: Path) -> subprocess.Popen[bytes]:
    home.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "connector_pipeline.definitions",
            "--select",
            asset,
        ],
        cwd=REPO_ROOT,
        env=p.cli_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the run and any child process share its process group
    )


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert proc.poll() is None, f"the run ended (code {proc.returncode}) before the crash point"
        assert time.monotonic() < deadline, "crash point not reached"
        time.sleep(0.02)


def kill_run(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    stop_process(proc)


def set_latency(client_factory: Callable[[], object], latency_ms: float) -> None:
    with client_factory() as client:  # type: ignore[attr-defined]
        client.post("/_sandbox/faults", json={"latency_ms": latency_ms}).raise_for_status()


def test_kill_between_zendesk_bulk_write_and_link_record(sqlite_url: str, tmp_path: Path) -> None:
    vendors = 300
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=vendors)
        p.materialize([intacct_vendors])
        with p.sandboxes.zendesk() as z:
            # Jobs take a while, so the run is waiting on them when Zendesk stops answering.
            z.post("/_sandbox/config", json={"job_delay_s": 2.0}).raise_for_status()

        proc = start_materialize(p, "zendesk_organizations", tmp_path / "home")
        try:
            wait_until(lambda: sum(p.zendesk_stats()["jobs"].values()) >= 3, proc)
            set_latency(p.sandboxes.zendesk, HANG_MS)  # the run hangs on its next poll
            wait_until(lambda: p.zendesk_stats()["organizations"] >= vendors, proc)
            kill_run(proc)
        finally:
            stop_process(proc)
        set_latency(p.sandboxes.zendesk, 0)

        links = p.store.vendor_links()
        assert sum(1 for link in links.values() if link["organization_id"]) == 0
        assert len(p.organizations()) == vendors  # written, not recorded

        result = p.materialize([zendesk_organizations])
        meta = metadata(result, "zendesk_organizations")
        assert (meta["created"], meta["updated"], meta["failed"]) == (0, vendors, 0)
        counts = count_by_external_id(p.organizations())
        assert len(counts) == vendors and max(counts.values()) == 1


def test_kill_between_intacct_create_and_link_record(sqlite_url: str, tmp_path: Path) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=50)
        p.materialize([intacct_vendors, zendesk_organizations])
        seed_tickets(p.sandboxes, tickets=600, days=10)
        p.materialize([zendesk_tickets], tags=ticket_range_tags(days=11))
        matched = {t["ticket_id"] for t in p.store.tickets() if t["organization_id"] is not None}
        # Slow enough that the test can step in between two create requests.
        set_latency(p.sandboxes.intacct, 300)

        proc = start_materialize(p, "intacct_ticket_records", tmp_path / "home")
        try:
            wait_until(lambda: p.intacct_stats()["writes"].get(TICKET_OBJECT, 0) >= 100, proc)
            set_latency(p.sandboxes.intacct, HANG_MS)
            time.sleep(0.5)
            kill_run(proc)
        finally:
            stop_process(proc)
        set_latency(p.sandboxes.intacct, 0)

        written_before = len(p.intacct_records(TICKET_OBJECT))
        assert 100 <= written_before < len(matched)
        assert not any(link.get("record_id") for link in p.store.ticket_links().values())

        result = p.materialize([intacct_ticket_records])
        meta = metadata(result, "intacct_ticket_records")
        assert meta["failed"] == 0
        assert meta["updated"] == written_before  # found by ticket id, not created again
        per_ticket = Counter(int(r["ticket_id"]) for r in p.intacct_records(TICKET_OBJECT))
        assert max(per_ticket.values()) == 1
        assert len(per_ticket) == meta["created"] + meta["updated"]
