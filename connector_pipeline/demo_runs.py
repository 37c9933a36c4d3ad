"""The demo's own runs: the first ones it launches through the Dagster webserver (the same
GraphQL API the UI calls, so they show in the UI as any launched run), and the clean-up of
runs a stopped demo interrupted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

LOCATION = "ml_connector"
REPOSITORY = "__repository__"
GRAPHQL_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 1.0
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
INTERRUPTED_MESSAGE = "Interrupted: the demo was stopped while this run was unfinished."

log = logging.getLogger(__name__)


class DagsterUI:
    """A few GraphQL calls against a running Dagster webserver."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            timeout=GRAPHQL_TIMEOUT_S,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"Dagster GraphQL error: {body['errors']}")
        return dict(body["data"])

    def location_loaded(self) -> bool:
        data = self.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
            "locationOrLoadError { __typename } } } } }"
        )
        return any(
            e["name"] == LOCATION
            and e["loadStatus"] == "LOADED"
            and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in data["workspaceOrError"]["locationEntries"]
        )

    def launch_job(self, job: str, tags: dict[str, str]) -> str:
        launched = self.graphql(
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
            "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } "
            "... on Error { message } } }",
            p={
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "jobName": job,
                },
                "runConfigData": {},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            },
        )["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"could not launch {job}: {launched}")
        return str(launched["run"]["runId"])

    def launch_backfill(
        self, assets: list[str], partitions: list[str], tags: dict[str, str]
    ) -> str:
        launched = self.graphql(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) "
            "{ __typename ... on LaunchBackfillSuccess { backfillId } "
            "... on PythonError { message } ... on Error { message } } }",
            p={
                "partitionNames": partitions,
                "assetSelection": [{"path": [a]} for a in assets],
                "fromFailure": False,
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"could not launch the backfill: {launched}")
        return str(launched["backfillId"])

    def run_status(self, run_id: str) -> str:
        data = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", id=run_id
        )
        return str(data["runOrError"].get("status"))


def wait_until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll `check` until it returns something true; connection errors count as "not yet"
    (the webserver is still starting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)


def ticket_load_partitions(today: date, days: int) -> list[str]:
    """The daily partitions of the last `days` days, today included."""
    return [(today - timedelta(days=n)).isoformat() for n in range(days, -1, -1)]


def launch_first_runs(
    ui: DagsterUI,
    *,
    today: date,
    ticket_days: int,
    timeout_s: float,
    echo: Callable[[str], None],
) -> None:
    """A vendor sync, then (so tickets and standing find their vendors' organizations
    linked) the standing refresh, the load of the last `ticket_days` days of tickets into
    the ledger and Intacct, and the first live ticket poll."""
    wait_until(ui.location_loaded, timeout_s, "the code location to load")
    tags = {"ml-connector/trigger": "demo-start"}
    run_id = ui.launch_job("vendor_sync", tags)
    echo(f"demo: launched the first vendor sync (run {run_id[:8]})")
    status = wait_until(
        lambda: (s := ui.run_status(run_id)) in FINISHED and s, timeout_s, "the vendor sync"
    )
    echo(f"demo: first vendor sync {status}")
    standing = ui.launch_job("standing_sync", tags)
    echo(f"demo: launched the first standing refresh (run {standing[:8]})")
    backfill = ui.launch_backfill(
        ["zendesk_tickets", "intacct_ticket_records"],
        ticket_load_partitions(today, ticket_days),
        tags,
    )
    echo(f"demo: launched the {ticket_days}-day ticket load (backfill {backfill})")
    # The live poll of today, as the schedule would run it in a quarter of an hour: it
    # starts the live cursor, so the first screen has no stale-cursor check failing.
    poll = ui.launch_job("ticket_poll", {**tags, "dagster/partition": today.isoformat()})
    echo(f"demo: launched today's live ticket poll (run {poll[:8]})")


def cancel_unfinished_runs(dagster_home: Path) -> list[str]:
    """Mark every unfinished run of this Dagster instance canceled and give back its pool
    slots. For the demo only, once its processes are stopped: a run caught by Ctrl-C would
    otherwise stay STARTING until run monitoring fails it as "timed out" on the next
    start, holding its `intacct_api` / `zendesk_api` slot meanwhile."""
    import dagster as dg
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    if not (dagster_home / "dagster.yaml").exists():
        return []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES))
        for run in runs:
            instance.report_run_canceled(run, message=INTERRUPTED_MESSAGE)
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        return [run.run_id for run in runs]
