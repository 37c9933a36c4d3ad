"""The deployment README "Running it for real" describes, run for real: Dagster's storage
on Postgres, `dagster-webserver` and `dagster-daemon` as separate processes, the ledger on
Postgres, the webhook receiver. A scheduled vendor sync and a sensor-launched webhook run
succeed through it; a daemon restart loses no delivery; a run worker killed with SIGKILL
gives its pool slot back through run monitoring, and the next run gets it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psutil
import pytest

from connector_pipeline import settings
from connector_pipeline.demo_runs import DagsterUI
from connector_pipeline.deployment import (
    ENV_DAGSTER_PG_URL,
    dagster_postgres_url,
    start_daemon,
    start_webserver,
    write_instance_config,
)
from connector_pipeline.run_launcher import LocalProcessRunLauncher
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import RunningSandboxes, run_sandboxes, seed_vendors
from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.scratch import scratch_postgres_database
from connector_pipeline_tests.conftest import postgres_base_url
from connector_pipeline_tests.e2e.harness import TICKET_OBJECT, fast_zendesk_config
from connector_pipeline_tests.support import free_port, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "production-shape-secret"
START_TIMEOUT_S = 120
# The vendor sync schedule fires every minute here; a run then takes a few seconds.
SCHEDULED_RUN_TIMEOUT_S = 120
RUN_TIMEOUT_S = 90
# Run monitoring polls every 10 s and frees a dead run's slots 10 s after it failed.
SLOT_BACK_TIMEOUT_S = 90
PROCESS_STOP_TIMEOUT_S = 20


@dataclass
class Deployment:
    ui: DagsterUI
    instance: dg.DagsterInstance
    sandboxes: RunningSandboxes
    ledger_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]

    def runs(self, job: str, **tags: str) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(job_name=job, tags=tags)))

    def check(self, what: str) -> None:
        for name, proc in self.processes.items():
            assert proc.poll() is None, f"{name} exited ({proc.returncode}) waiting for {what}"


def wait_for(deployment: Deployment, what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        deployment.check(what)
        with contextlib.suppress(httpx.HTTPError):
            if value := check():
                return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    server = postgres_base_url()
    with (
        scratch_postgres_database(server, prefix="mlc_dagster") as dagster_db,
        scratch_postgres_database(server, prefix="mlc_ledger") as ledger_url,
    ):
        receiver_port = free_port()
        with run_sandboxes(
            intacct_config=IntacctSandboxConfig(),
            zendesk_config=fast_zendesk_config(
                webhook_url=f"http://127.0.0.1:{receiver_port}/webhooks/zendesk",
                webhook_secret=SECRET,
            ),
        ) as sandboxes:
            seed_vendors(sandboxes, vendors=30)
            home = tmp_path / "dagster"
            write_instance_config(home, postgres=True)
            env = {
                **os.environ,
                **sandboxes.env,
                "DAGSTER_HOME": str(home),
                ENV_DAGSTER_PG_URL: dagster_postgres_url(dagster_db),
                settings.ENV_ML_CONNECTOR_HOME: str(tmp_path / "home"),
                settings.ENV_STAGING_DATABASE_URL: ledger_url,
                settings.ENV_ZENDESK_WEBHOOK_SECRETS: SECRET,
                settings.ENV_SCHEDULES_RUNNING: "1",
                settings.ENV_VENDOR_SYNC_CRON: "* * * * *",
                # Only the vendor sync is scheduled here.
                settings.ENV_TICKET_POLL_CRON: "0 0 1 1 *",
                settings.ENV_RECONCILE_CRON: "0 0 1 1 *",
                settings.ENV_INBOX_SENSOR_INTERVAL_S: "5",
            }
            ui_port = free_port()
            processes = {
                "receiver": subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "ml-connector"),
                        "webhook",
                        "serve",
                        "--port",
                        str(receiver_port),
                        "--log-level",
                        "warning",
                    ],
                    env=env,
                    start_new_session=True,
                ),
                "dagster-webserver": start_webserver(env, ui_port),
                "dagster-daemon": start_daemon(env),
            }
            os.environ[ENV_DAGSTER_PG_URL] = env[ENV_DAGSTER_PG_URL]
            instance = dg.DagsterInstance.from_config(str(home))
            try:
                yield Deployment(
                    ui=DagsterUI(f"http://127.0.0.1:{ui_port}"),
                    instance=instance,
                    sandboxes=sandboxes,
                    ledger_url=ledger_url,
                    env=env,
                    processes=processes,
                )
            finally:
                os.environ.pop(ENV_DAGSTER_PG_URL, None)
                family = [p for proc in processes.values() for p in descendants(proc)]
                for proc in processes.values():
                    stop_process(proc, PROCESS_STOP_TIMEOUT_S, group=True)
                for leftover in psutil.wait_procs(family, timeout=10)[1]:
                    with contextlib.suppress(psutil.Error):
                        leftover.kill()
                instance.dispose()


def descendants(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return list(psutil.Process(proc.pid).children(recursive=True))
    except psutil.Error:
        return []


def succeeded(runs: list[dg.DagsterRun]) -> list[dg.DagsterRun]:
    return [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]


def push_tickets(d: Deployment, subjects: list[str]) -> list[int]:
    """Tickets created in Zendesk for linked organizations: Zendesk pushes each one to
    the receiver as a webhook delivery."""
    with d.sandboxes.zendesk() as z:
        orgs = [o for o in z.get("/_sandbox/organizations").json() if o.get("external_id")]
        created = [
            z.post(
                "/_sandbox/tickets",
                json={"subject": subject, "organization_id": orgs[n % len(orgs)]["id"]},
            )
            .raise_for_status()
            .json()
            for n, subject in enumerate(subjects)
        ]
    return [int(t["id"] if "id" in t else t["ticket"]["id"]) for t in created]


def intacct_ticket_ids(d: Deployment) -> set[int]:
    with d.sandboxes.intacct() as intacct:
        records = intacct.get(f"/_sandbox/records/{TICKET_OBJECT}").raise_for_status().json()
    return {int(r["ticket_id"]) for r in records}


def inbox_pending(d: Deployment) -> int:
    store = StagingStore.open(d.ledger_url)
    try:
        return store.inbox_backlog().pending
    finally:
        store.dispose()


def worker_pid(d: Deployment, run_id: str) -> int | None:
    launcher = d.instance.run_launcher
    assert isinstance(launcher, LocalProcessRunLauncher)
    started = launcher._worker_started(run_id)
    return None if started is None else started[0]


def step_started(d: Deployment, run_id: str, step: str) -> bool:
    records = d.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return any(r.event_log_entry.step_key == step for r in records)


def test_the_production_shape_runs_survives_a_daemon_restart_and_a_killed_run(
    deployment: Deployment,
) -> None:
    d = deployment
    wait_for(d, "the code location", d.ui.location_loaded, START_TIMEOUT_S)

    # 1. The schedule (in the daemon) launches a vendor sync, which succeeds.
    scheduled = wait_for(
        d,
        "a scheduled vendor sync to succeed",
        lambda: succeeded(
            d.runs("vendor_sync", **{"dagster/schedule_name": "vendor_sync_every_15_minutes"})
        ),
        SCHEDULED_RUN_TIMEOUT_S,
    )
    assert scheduled[0].tags["ml-connector/trigger"] == "schedule"

    # 2. Zendesk pushes ticket changes; the sensor launches a run that writes them to
    # Intacct.
    first = push_tickets(d, ["Invoice question", "Payment\u00a0 late"])
    wait_for(
        d,
        "a sensor-launched webhook run to write the pushed tickets",
        lambda: (
            succeeded(d.runs("webhook_events", **{"ml-connector/trigger": "webhook"}))
            and set(first) <= intacct_ticket_ids(d)
        ),
        RUN_TIMEOUT_S,
    )

    # 3. The daemon restarts; deliveries that arrive meanwhile wait in the inbox and are
    # written once it is back.
    stop_process(d.processes.pop("dagster-daemon"), PROCESS_STOP_TIMEOUT_S, group=True)
    runs_before = len(d.runs("webhook_events"))
    second = push_tickets(d, ["While the daemon was down", "Another one"])
    wait_for(d, "the receiver to commit", lambda: inbox_pending(d) >= 2, RUN_TIMEOUT_S)
    d.processes["dagster-daemon"] = start_daemon(d.env)
    wait_for(
        d,
        "the restarted daemon's sensor to drain the inbox",
        lambda: set(second) <= intacct_ticket_ids(d) and inbox_pending(d) == 0,
        RUN_TIMEOUT_S,
    )
    assert len(d.runs("webhook_events")) > runs_before

    # 4. A run worker killed with SIGKILL while its step holds the intacct_api slot:
    # run monitoring fails the run and frees the slot, and the next run (the run retry)
    # gets the slot and succeeds.
    with d.sandboxes.intacct() as intacct:
        intacct.post("/_sandbox/config", json={"latency_ms": 3000}).raise_for_status()
    victim = d.ui.launch_job("vendor_sync", {"ml-connector/trigger": "test-kill"})
    wait_for(
        d,
        "the run to hold the intacct_api slot",
        lambda: worker_pid(d, victim) and step_started(d, victim, "intacct_vendors"),
        RUN_TIMEOUT_S,
    )
    os.kill(int(worker_pid(d, victim) or 0), signal.SIGKILL)
    killed_at = time.monotonic()
    with d.sandboxes.intacct() as intacct:
        intacct.post("/_sandbox/config", json={"latency_ms": 0}).raise_for_status()
    failed = wait_for(
        d,
        "run monitoring to fail the killed run",
        lambda: (r := d.instance.get_run_by_id(victim)) and r.status == dg.DagsterRunStatus.FAILURE,
        SLOT_BACK_TIMEOUT_S,
    )
    assert failed
    retry = wait_for(
        d,
        "the next run to get the slot and succeed",
        lambda: succeeded(d.runs("vendor_sync", **{"dagster/parent_run_id": victim})),
        SLOT_BACK_TIMEOUT_S,
    )
    elapsed = time.monotonic() - killed_at
    print(f"the killed run's slot came back and its retry succeeded {elapsed:.0f} s after SIGKILL")
    assert retry
