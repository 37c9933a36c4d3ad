"""The Intacct hint sensor: deliveries from Intacct's outbound webhooks wake the vendor read.

Each verified delivery is a row in the ledger's `intacct_hints` (the webhook receiver writes
it); the vendor read consumes those that arrived before it began reading. This sensor only
decides, from the ledger and the runs in progress, whether one more vendor read is owed
(`sync.hints.decide_hint_run`). The 15-minute schedule stays as the safety net.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.automation import vendor_sync_job
from connector_pipeline.defs.credentials import paused_by_credentials
from connector_pipeline.defs.resources import StagingResource
from connector_pipeline.staging.hints import HINT_READ_STARTED_CURSOR, IntacctHints
from connector_pipeline.sync.hints import decide_hint_run

# Jobs whose runs read vendors (and so cover waiting hints).
VENDOR_READING_JOBS = ("vendor_sync", "full_reconciliation")
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.sensor(
    name="intacct_hint_sensor",
    job=vendor_sync_job,
    minimum_interval_seconds=settings.INTACCT_HINT_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs vendor_sync when Intacct's outbound webhooks report a change.",
)
def intacct_hint_sensor(
    context: dg.SensorEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """A burst of deliveries costs at most two vendor reads; see sync/hints.py."""
    paused = paused_by_credentials(staging)
    if paused:
        return paused
    store = staging.store
    pending = IntacctHints(store).pending()
    if pending.count == 0:
        return dg.SkipReason("no Intacct deliveries waiting")
    starts: list[datetime | None] = []
    for job_name in VENDOR_READING_JOBS:
        for record in context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=job_name, statuses=IN_PROGRESS)
        ):
            started = record.start_time
            starts.append(None if started is None else datetime.fromtimestamp(started, UTC))
    marker = store.get_cursor(HINT_READ_STARTED_CURSOR)
    decision = decide_hint_run(
        pending=pending.count,
        newest=pending.newest,
        read_started=datetime.fromisoformat(marker) if marker else None,
        active_run_starts=starts,
    )
    if decision.run_key is None:
        return dg.SkipReason(decision.reason)
    return dg.RunRequest(
        run_key=decision.run_key,
        tags={
            settings.RUN_TAG_TRIGGER: "intacct-webhook",
            settings.RUN_TAG_HINTS: str(pending.count),
        },
    )
