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
# A second `make demo` shows new webhook runs within a minute of its UI being up.
RESTART_WEBHOOK_TIMEOUT_S = START_TIMEOUT_S + 60
LOCATION = "ml_connector"
REPOSITORY = "__repository__"
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


class Demo:
    def __init__(self, ui: str, intacct: str, zendesk: str) -> None:
        self.ui = ui
        self.intacct = intacct
        self.zendesk = zendesk

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


class Demos:
    """Starts `ml-connector demo` (again) with the same home and ports, as a person who
    presses Ctrl-C and runs `make demo` again would; stops whatever is left at the end."""

    def __init__(self, home: Path) -> None:
        self.ports = {name: free_port() for name in ("ui", "intacct", "zendesk", "webhook")}
        self.env = {
            **os.environ,
            "ML_CONNECTOR_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
        }
        self.env.pop("STAGING_DATABASE_URL", None)
        self.started: list[tuple[subprocess.Popen[bytes], list[psutil.Process]]] = []

    def start(self) -> tuple[Demo, subprocess.Popen[bytes]]:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ml-connector"),
                "demo",
                "--port",
                str(self.ports["ui"]),
                "--intacct-port",
                str(self.ports["intacct"]),
                "--zendesk-port",
                str(self.ports["zendesk"]),
                "--webhook-port",
                str(self.ports["webhook"]),
                "--vendors",
                "60",
                "--tickets",
                "150",
                "--traffic-interval",
                "2",
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # as in a terminal: Ctrl-C goes to this group
        )
        self.started.append((proc, []))
        ui = Demo(
            f"http://127.0.0.1:{self.ports['ui']}",
            f"http://127.0.0.1:{self.ports['intacct']}",
            f"http://127.0.0.1:{self.ports['zendesk']}",
        )
        return ui, proc

    def note_family(self, proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
        family = descendants(proc)
        for started, known in self.started:
            if started is proc:
                known.extend(family)
        return family

    def stop_all(self) -> None:
        for proc, known in self.started:
            # The demo's children run in groups of their own; note them while they are
            # still its children, so nothing is left behind even if it fails to stop them.
            family = known + descendants(proc)
            stop_process(proc, timeout=30)
            for leftover in psutil.wait_procs(family, timeout=10)[1]:
                with contextlib.suppress(psutil.Error):
                    leftover.kill()


@pytest.fixture
def demos(tmp_path: Path) -> Iterator[Demos]:
    d = Demos(tmp_path / "home")
    try:
        yield d
    finally:
        d.stop_all()


def descendants(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return list(psutil.Process(proc.pid).children(recursive=True))
    except psutil.Error:
        return []


def location_loaded(ui: Demo) -> bool:
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


def ctrl_c(demos: Demos, proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as in a terminal: the demo stops everything it started, down to dagster's
    code servers, and exits cleanly."""
    family = demos.note_family(proc)
    assert len(family) >= 5  # receiver, dagster dev, webserver, daemon, code server(s)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    alive = psutil.wait_procs(family, timeout=30)[1]
    assert not alive, [" ".join(p.cmdline()[:4]) for p in alive]


def test_demo_serves_the_ui_runs_jobs_backfills_and_the_sensor(demos: Demos) -> None:
    started = time.monotonic()
    ui, proc = demos.start()
    wait_for("the code location", lambda: location_loaded(ui), START_TIMEOUT_S, proc)
    print(f"\ndemo: UI up with the code location after {time.monotonic() - started:.0f} s")

    assets = ui.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
    assert {a["assetKey"]["path"][-1] for a in assets} == {
        "intacct_vendors",
        "zendesk_organizations",
        "zendesk_tickets",
        "zendesk_ticket_events",
        "intacct_ticket_records",
        "intacct_standing",
        "zendesk_standing",
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

    # The demo launches the first vendor sync itself, then the 30-day ticket load, so the
    # first screen shows a success and ticket records reach Intacct.
    demo_start = [{"key": "ml-connector/trigger", "value": "demo-start"}]
    wait_for(
        "the demo's first vendor sync to succeed",
        lambda: [
            r
            for r in ui.runs(pipelineName="vendor_sync", tags=demo_start)
            if r["status"] == "SUCCESS"
        ],
        RUN_TIMEOUT_S,
        proc,
    )
    print(f"demo: first vendor sync succeeded after {time.monotonic() - started:.0f} s")
    records = wait_for(
        "ticket records of the 30-day load in Intacct",
        lambda: (
            len(httpx.get(f"{ui.intacct}/_sandbox/records/zendesk_ticket", timeout=10).json()) > 50
        ),
        RUN_TIMEOUT_S,
        proc,
    )
    assert records
    print(f"demo: ticket records in Intacct after {time.monotonic() - started:.0f} s")

    # Financial standing reaches the organizations: the demo created the fields
    # (`ml-connector setup zendesk`) and launched the first standing refresh.
    wait_for(
        "standing on the organizations",
        lambda: [
            o
            for o in httpx.get(f"{ui.zendesk}/_sandbox/organizations", timeout=10).json()
            if (o.get("organization_fields") or {}).get("intacct_standing")
        ],
        RUN_TIMEOUT_S,
        proc,
    )

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
    # tagged with why, which write the tickets of linked organizations to Intacct.
    webhook = [{"key": "ml-connector/trigger", "value": "webhook"}]
    first_session = wait_for(
        "a sensor-launched webhook_events run",
        lambda: [
            r
            for r in ui.runs(pipelineName="webhook_events", tags=webhook)
            if r["status"] == "SUCCESS"
        ],
        RUN_TIMEOUT_S,
        proc,
    )
    first_runs = ui.runs()
    ctrl_c(demos, proc)

    # `make demo` again: a fresh ledger (ids from 1 again) under the same Dagster
    # instance; webhook runs start again, and nothing of the first session is left
    # unfinished for this one to fail.
    restarted = time.monotonic()
    ui, proc = demos.start()
    wait_for(
        "the code location after a restart", lambda: location_loaded(ui), START_TIMEOUT_S, proc
    )
    before = {r["runId"] for r in first_runs}
    left = [r for r in ui.runs() if r["runId"] in before and r["status"] not in FINISHED]
    assert not left, left
    seen = {r["runId"] for r in first_session}
    wait_for(
        "a webhook_events run of the restarted demo",
        lambda: [
            r
            for r in ui.runs(pipelineName="webhook_events", tags=webhook)
            if r["status"] == "SUCCESS" and r["runId"] not in seen
        ],
        RESTART_WEBHOOK_TIMEOUT_S,
        proc,
    )
    print(f"demo: second start, new webhook run after {time.monotonic() - restarted:.0f} s")
    ctrl_c(demos, proc)
