"""Dagster's default run launcher, plus the worker health check run monitoring needs.

The default launcher starts each run worker as a process on the code server's host and
cannot tell run monitoring whether that process still lives, so a run worker killed with
SIGKILL (out-of-memory killer, `kill -9`, a host restart) leaves its run STARTED for good,
holding its `intacct_api` / `zendesk_api` pool slot, and every later run waits on "Step
blocked by limit for pool". Here the worker's pid, which the worker itself reports in its
first engine event, is checked on this host: a vanished worker fails the run, and run
monitoring then frees its slots (`free_slots_after_run_end_seconds` in dagster.yaml).

This fits the deployments the README describes, where the daemon and the code server run
on one machine. With workers elsewhere, use a launcher made for that (Docker, Kubernetes),
which has its own health check.
"""

from __future__ import annotations

import psutil
from dagster import DagsterEventType, DagsterRun
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

WORKER_STARTED_MESSAGE = "Started process for run (pid: "
# A process started this long after the worker reported its pid is another process that
# reused the number.
PID_REUSE_MARGIN_S = 5.0


class LocalProcessRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose run workers run monitoring can check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        started = self._worker_started(run.run_id)
        if started is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run worker has no pid yet")
        pid, reported_at = started
        try:
            process = psutil.Process(pid)
            alive = process.status() != psutil.STATUS_ZOMBIE and (
                process.create_time() <= reported_at + PID_REUSE_MARGIN_S
            )
        except psutil.NoSuchProcess:
            alive = False
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run worker process (pid {pid}) is gone: it was killed or crashed",
            run_worker_id=str(pid),
        )

    def _worker_started(self, run_id: str) -> tuple[int, float] | None:
        """The pid the run worker reported, and when."""
        records = self._instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50, ascending=True
        ).records
        for record in records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None or not (event.message or "").startswith(WORKER_STARTED_MESSAGE):
                continue
            pid = event.engine_event_data.metadata.get("pid")
            if pid is not None:
                return int(str(pid.value)), entry.timestamp
        return None
