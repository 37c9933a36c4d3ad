"""A whole connector against both sandboxes: real HTTP servers, a real ledger, real
Dagster runs (in-process, or as `dagster` CLI child processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.resources import resources_for
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import RunningSandboxes, run_sandboxes
from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig
from connector_pipeline.staging import StagingStore
from connector_pipeline_tests.support import REPO_ROOT, stop_process

# Test speed: the incremental-export limit keeps its 10 requests per window, but the
# window is seconds, not a minute; jobs finish quickly; no one-minute export lag.
RATE_WINDOW_S = 2.0
# What a `dagster` child process needs of the machine; everything else it is given.
_SYSTEM_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT")
TICKET_OBJECT = "zendesk_ticket"


def fast_zendesk_config(**over: Any) -> ZendeskSandboxConfig:
    values: dict[str, Any] = {
        "rate_window_s": RATE_WINDOW_S,
        "job_delay_s": 0.05,
        "export_lag_s": 0.0,
        "plan_limit_per_minute": 2500,
    }
    values.update(over)
    return ZendeskSandboxConfig(**values)


@dataclass
class Pipeline:
    sandboxes: RunningSandboxes
    ledger_url: str
    store: StagingStore
    instance: dg.DagsterInstance

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.sandboxes.env,
            settings.ENV_STAGING_DATABASE_URL: self.ledger_url,
        }

    def resources(self) -> dict[str, Any]:
        return resources_for(self.env, rate_window_s=RATE_WINDOW_S)

    def materialize(
        self,
        assets: Sequence[Any],
        *,
        config: dict[str, dict[str, Any]] | None = None,
        partition_key: str | None = None,
        tags: dict[str, str] | None = None,
        selection: Sequence[Any] | None = None,
    ) -> dg.ExecuteInProcessResult:
        run_config = {"ops": {name: {"config": c} for name, c in (config or {}).items()}}
        result = dg.materialize(
            list(assets),
            resources=self.resources(),
            run_config=run_config,
            partition_key=partition_key,
            tags=tags,
            instance=self.instance,
            selection=selection,
        )
        assert result.success
        return result

    # ---- what the sandboxes hold, through their scenario APIs
    def intacct_records(self, obj: str) -> list[dict[str, Any]]:
        with self.sandboxes.intacct() as c:
            return list(c.get(f"/_sandbox/records/{obj}").raise_for_status().json())

    def intacct_stats(self) -> dict[str, Any]:
        with self.sandboxes.intacct() as c:
            return dict(c.get("/_sandbox/stats").raise_for_status().json())

    def organizations(self) -> list[dict[str, Any]]:
        with self.sandboxes.zendesk() as c:
            return list(c.get("/_sandbox/organizations").raise_for_status().json())

    def tickets(self) -> list[dict[str, Any]]:
        with self.sandboxes.zendesk() as c:
            return list(c.get("/_sandbox/tickets").raise_for_status().json())

    def zendesk_stats(self) -> dict[str, Any]:
        with self.sandboxes.zendesk() as c:
            return dict(c.get("/_sandbox/stats").raise_for_status().json())

    def cli_env(self, dagster_home: Path) -> dict[str, str]:
        """The environment a user's `dagster` command would have: this pipeline's sandboxes
        and ledger, and its own instance folder. Explicit: nothing of the developer's own
        configuration (real credentials, another ledger, schedule settings) leaks in."""
        system = {name: os.environ[name] for name in _SYSTEM_ENV if name in os.environ}
        return {**system, **self.env, "DAGSTER_HOME": str(dagster_home)}

    def dagster_cli(
        self, args: Sequence[str], dagster_home: Path, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run the `dagster` command as a user would, against this pipeline's sandboxes."""
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), *args],
            cwd=REPO_ROOT,
            env=self.cli_env(dagster_home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            stop_process(proc)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, None)


@contextmanager
def pipeline(
    ledger_url: str,
    *,
    intacct_config: IntacctSandboxConfig | None = None,
    zendesk_config: ZendeskSandboxConfig | None = None,
) -> Iterator[Pipeline]:
    with run_sandboxes(
        intacct_config=intacct_config or IntacctSandboxConfig(ticket_object=TICKET_OBJECT),
        zendesk_config=zendesk_config or fast_zendesk_config(),
    ) as sandboxes:
        store = StagingStore.open(ledger_url)
        try:
            yield Pipeline(sandboxes, ledger_url, store, dg.DagsterInstance.ephemeral())
        finally:
            store.dispose()


def count_by_external_id(organizations: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(o["external_id"]).lower() for o in organizations if o.get("external_id"))
