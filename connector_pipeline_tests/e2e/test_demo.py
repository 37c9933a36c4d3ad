"""`ml-connector demo` (what `make demo` runs), used the way a person uses the UI: through
the Dagster webserver's GraphQL API, which is what the UI itself calls."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from connector_pipeline_tests.support import REPO_ROOT, free_port, stop_process

START_TIMEOUT_S = 240
RUN_TIMEOUT_S = 240
LOCATION = "ml_connector"
REPOSITORY = "__repository__"


class Demo:
    def __init__(self, ui: str, intacct: str) -> None:
        self.ui = ui
        self.intacct = intacct

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.ui}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return dict(body["data"])

    def run_status(self, run_id: str) -> str:
        data = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", id=run_id
        )
        return str(data["runOrError"]["status"])

    def runs(self, **filter_: Any) -> list[dict[str, Any]]:
        data = self.graphql(
            "query($f: RunsFilter) { runsOrError(filter: $f) "
            "{ ... on Runs { results { runId status tags { key value } } } } }",
            f=filter_,
        )
        return list(data["runsOrError"]["results"])


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[bytes]
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"the demo exited (code {proc.returncode}) waiting for {what}"
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, subprocess.Popen[bytes]]]:
    ports = {name: free_port() for name in ("ui", "intacct", "zendesk", "webhook")}
    env = {
        **os.environ,
        "ML_CONNECTOR_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "home" / "dagster"),
    }
    env.pop("STAGING_DATABASE_URL", None)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ml-connector"),
            "demo",
            "--port",
            str(ports["ui"]),
            "--intacct-port",
            str(ports["intacct"]),
            "--zendesk-port",
            str(ports["zendesk"]),
            "--webhook-port",
            str(ports["webhook"]),
            "--vendors",
            "60",
            "--tickets",
            "150",
            "--traffic-interval",
            "2",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # as in a terminal: Ctrl-C goes to this group
    )
    try:
        yield Demo(f"http://127.0.0.1:{ports['ui']}", f"http://127.0.0.1:{ports['intacct']}"), proc
    finally:
        # The demo's children run in groups of their own; note them while they are still
        # its children, so nothing is left behind even if the demo fails to stop them.
        family = descendants(proc)
        stop_process(proc, timeout=30)
        for leftover in psutil.wait_procs(family, timeout=10)[1]:
            with contextlib.suppress(psutil.Error):
                leftover.kill()


def descendants(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return list(psutil.Process(proc.pid).children(recursive=True))
    except psutil.Error:
        return []


def test_demo_serves_the_ui_runs_jobs_backfills_and_the_sensor(
    demo: tuple[Demo, subprocess.Popen[bytes]],
) -> None:
    ui, proc = demo

    def location_loaded() -> bool:
        data = ui.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
            "locationOrLoadError { __typename } } } } }"
        )
        entries = data["workspaceOrError"]["locationEntries"]
        return any(
            e["name"] == LOCATION
            and e["loadStatus"] == "LOADED"
            and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in entries
        )

    wait_for("the code location", location_loaded, START_TIMEOUT_S, proc)

    assets = ui.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
    assert {a["assetKey"]["path"][-1] for a in assets} == {
        "intacct_vendors",
        "zendesk_organizations",
        "zendesk_tickets",
        "zendesk_ticket_events",
        "intacct_ticket_records",
    }
    sensor = ui.graphql(
        "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) "
        "{ ... on Sensor { sensorState { status } } } }",
        s={
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "sensorName": "webhook_inbox_sensor",
        },
    )
    assert sensor["sensorOrError"]["sensorState"]["status"] == "RUNNING"

    # "Materialize" the vendor side, as the Launchpad does.
    launched = ui.graphql(
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
        "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }",
        p={
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": "vendor_sync",
            },
            "runConfigData": {},
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for(
        "the vendor sync run",
        lambda: (s := ui.run_status(run_id)) in ("SUCCESS", "FAILURE", "CANCELED") and s,
        RUN_TIMEOUT_S,
        proc,
    )
    assert status == "SUCCESS"

    # A backfill of a week of tickets from the UI: one run, as the backfill policy says.
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(8, 1, -1)]
    backfill = ui.graphql(
        "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) "
        "{ __typename ... on LaunchBackfillSuccess { backfillId } "
        "... on PythonError { message } } }",
        p={
            "partitionNames": days,
            "assetSelection": [{"path": ["zendesk_tickets"]}],
            "fromFailure": False,
        },
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
    backfill_runs = wait_for(
        "the backfill run to succeed",
        lambda: [
            r
            for r in ui.runs(tags=[{"key": "dagster/backfill", "value": backfill["backfillId"]}])
            if r["status"] == "SUCCESS"
        ],
        RUN_TIMEOUT_S,
        proc,
    )
    assert len(ui.runs(tags=[{"key": "dagster/backfill", "value": backfill["backfillId"]}])) == 1
    assert len(backfill_runs) == 1

    # Live traffic in the Zendesk sandbox reaches the receiver; the sensor launches runs
    # that write the tickets of linked organizations to Intacct.
    wait_for(
        "a sensor-launched webhook_events run",
        lambda: [r for r in ui.runs(pipelineName="webhook_events") if r["status"] == "SUCCESS"],
        RUN_TIMEOUT_S,
        proc,
    )
    wait_for(
        "ticket records in Intacct",
        lambda: httpx.get(f"{ui.intacct}/_sandbox/records/zendesk_ticket", timeout=10).json(),
        RUN_TIMEOUT_S,
        proc,
    )

    # Ctrl-C, as in a terminal: the demo stops everything it started, down to dagster's
    # code servers, and exits cleanly.
    family = descendants(proc)
    assert len(family) >= 5  # receiver, dagster dev, webserver, daemon, code server(s)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    alive = psutil.wait_procs(family, timeout=30)[1]
    assert not alive, [" ".join(p.cmdline()[:4]) for p in alive]
