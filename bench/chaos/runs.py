"""Dagster runs as a user or the daemon launches them: one `dagster job execute` process per
run, in a process group of its own (so a SIGKILL takes the whole run, and nothing outlives
the harness), against one scratch instance whose `dagster.yaml` is the project's (pools
`intacct_api` and `zendesk_api` at one slot each).

The harness plays run monitoring's part for the runs it kills: the dead run is marked
failed and its pool slots are freed, as `run_monitoring` in dagster.yaml does for a
crashed worker. Without that, a killed run would hold its pool slot forever and every
later run would wait on it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from connector_pipeline.servers import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")
ATTEMPT_TAG = "chaos/attempt"
STOP_TIMEOUT_S = 10.0


@dataclass
class RunOutcome:
    job: str
    attempt: str
    status: str  # "success", "failed", "killed", "timeout", "stopped"
    seconds: float
    tail: str = ""


@dataclass
class LiveRun:
    job: str
    attempt: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    killed: bool = False


class DagsterRuns:
    """Launches, watches, kills and accounts for the runs of one chaos session."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
        # Create the instance's storage once, here: runs that start together would race
        # to create the same SQLite tables.
        dg.DagsterInstance.from_config(str(home)).dispose()
        self.logs = home / "run-logs"
        self.logs.mkdir(exist_ok=True)
        self.env = {**os.environ, **env, "DAGSTER_HOME": str(home)}
        self._lock = threading.Lock()
        self._live: dict[str, LiveRun] = {}
        self.outcomes: list[RunOutcome] = []

    # ---- launching

    def start(self, job: str, *, tags: dict[str, str] | None = None) -> LiveRun:
        attempt = uuid.uuid4().hex[:12]
        all_tags = {**(tags or {}), ATTEMPT_TAG: attempt}
        log_path = self.logs / f"{job}-{attempt}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    DAGSTER,
                    "job",
                    "execute",
                    "-m",
                    "connector_pipeline.definitions",
                    "-j",
                    job,
                    "--tags",
                    json.dumps(all_tags),
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as a whole
            )
        run = LiveRun(job, attempt, proc, log_path)
        with self._lock:
            self._live[attempt] = run
        return run

    def wait(self, run: LiveRun, timeout_s: float) -> RunOutcome:
        """Wait for the run to end; past `timeout_s` it is killed (a hung run)."""
        try:
            code = run.proc.wait(timeout=timeout_s)
            status = "killed" if run.killed else ("success" if code == 0 else "failed")
        except subprocess.TimeoutExpired:
            self._kill_group(run)
            status = "timeout"
        return self._finish(run, status)

    def execute(
        self, job: str, *, tags: dict[str, str] | None = None, timeout_s: float = 300
    ) -> RunOutcome:
        return self.wait(self.start(job, tags=tags), timeout_s)

    # ---- killing

    def live(self, jobs: set[str] | None = None) -> list[LiveRun]:
        with self._lock:
            return [
                r
                for r in self._live.values()
                if not r.killed and r.proc.poll() is None and (jobs is None or r.job in jobs)
            ]

    def kill(self, run: LiveRun) -> bool:
        """SIGKILL the run's whole process group, as a crash or an OOM kill would."""
        with self._lock:
            if run.killed or run.proc.poll() is not None:
                return False
            run.killed = True
        self._kill_group(run)
        return True

    def stop_all(self) -> None:
        for run in self.live():
            run.killed = True
            self._kill_group(run)

    def _kill_group(self, run: LiveRun) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        stop_process(run.proc, STOP_TIMEOUT_S, group=True)

    def _finish(self, run: LiveRun, status: str) -> RunOutcome:
        with self._lock:
            self._live.pop(run.attempt, None)
        if status in ("killed", "timeout"):
            self._as_run_monitoring_would(run.attempt)
        tail = ""
        if status != "success":
            text = run.log_path.read_text(errors="replace")
            tail = text[-2000:]
        outcome = RunOutcome(
            run.job, run.attempt, status, round(time.monotonic() - run.started, 2), tail
        )
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _as_run_monitoring_would(self, attempt: str) -> None:
        """Mark the dead run failed and free its pool slots (dagster.yaml run_monitoring)."""
        instance = dg.DagsterInstance.from_config(str(self.home))
        try:
            runs = instance.get_runs(filters=dg.RunsFilter(tags={ATTEMPT_TAG: attempt}))
            for run in runs:
                if not run.is_finished:
                    instance.report_run_failed(run)
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        finally:
            instance.dispose()

    # ---- accounting

    def tally(self) -> dict[str, Any]:
        with self._lock:
            by_job: dict[str, Counter[str]] = {}
            for o in self.outcomes:
                by_job.setdefault(o.job, Counter())[o.status] += 1
            return {
                "runs": len(self.outcomes),
                "by_status": dict(Counter(o.status for o in self.outcomes)),
                "by_job": {job: dict(c) for job, c in sorted(by_job.items())},
            }
