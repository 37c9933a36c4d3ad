"""Jobs, schedules and the webhook inbox sensor that keep the connector running unattended."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from connector_pipeline import settings
from connector_pipeline.defs.credentials import paused_by_credentials
from connector_pipeline.defs.resources import StagingResource
from connector_pipeline.defs.standing import intacct_standing, zendesk_standing
from connector_pipeline.defs.tickets import (
    intacct_ticket_records,
    zendesk_ticket_events,
    zendesk_tickets,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations

# Tags on every run the automation launches, so the runs list can be filtered by them
# (README, "Watching it run"): why the run was launched, and for the webhook runs how
# much they were asked to drain.
TRIGGER_TAG = "ml-connector/trigger"
PENDING_TAG = "ml-connector/inbox-pending"
OLDEST_TAG = "ml-connector/inbox-oldest-received"
# Queued or running: a webhook_events run in one of these will drain what is pending.
DRAINING_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    *IN_PROGRESS_RUN_STATUSES,
]


def trigger_tags(trigger: str) -> dict[str, str]:
    return {TRIGGER_TAG: trigger}


def inbox_sensor_interval_s(environ: Mapping[str, str]) -> int:
    """Seconds between looks at the webhook inbox (`ML_CONNECTOR_INBOX_SENSOR_INTERVAL_S`),
    which bounds webhook runs to 86,400 / interval a day however busy the account."""
    value = environ.get(
        settings.ENV_INBOX_SENSOR_INTERVAL_S, str(settings.DEFAULT_INBOX_SENSOR_INTERVAL_S)
    )
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError(
            f"{settings.ENV_INBOX_SENSOR_INTERVAL_S} must be a whole number of seconds, "
            f"got {value!r}"
        ) from None
    if seconds < 1:
        raise ValueError(f"{settings.ENV_INBOX_SENSOR_INTERVAL_S} must be at least 1")
    return seconds


vendor_sync_job = dg.define_asset_job(
    "vendor_sync",
    selection=[intacct_vendors, zendesk_organizations],
    description="Intacct vendors changed since the watermark, then their Zendesk organizations.",
)
standing_sync_job = dg.define_asset_job(
    "standing_sync",
    selection=[intacct_standing, zendesk_standing],
    description="Intacct bills and payments changed since the watermark, then each "
    "organization's financial standing where it changed.",
)
ticket_poll_job = dg.define_asset_job(
    "ticket_poll",
    selection=[zendesk_tickets, intacct_ticket_records],
    description="Today's Zendesk ticket changes, then their Intacct records.",
)
webhook_events_job = dg.define_asset_job(
    "webhook_events",
    selection=[zendesk_ticket_events, intacct_ticket_records],
    description="Drain the webhook inbox into the ledger, then write the Intacct records.",
)
full_reconciliation_job = dg.define_asset_job(
    "full_reconciliation",
    selection=[intacct_vendors, zendesk_organizations, intacct_ticket_records],
    description=(
        "Re-read every vendor (marking those gone from Intacct) and rewrite what differs; "
        "re-check every ticket record."
    ),
    config={
        "ops": {
            name: {"config": {"full_refresh": True, "dry_run": False}}
            for name in ("intacct_vendors", "zendesk_organizations", "intacct_ticket_records")
        }
    },
    # The organization checks compare with every organization in Zendesk only here.
    tags={settings.ZENDESK_COMPARISON_TAG: "true"},
)


def _schedule_status(environ: Mapping[str, str]) -> dg.DefaultScheduleStatus:
    running = environ.get(settings.ENV_SCHEDULES_RUNNING, "").lower() in ("1", "true", "yes")
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def vendor_sync_tick(
    context: dg.ScheduleEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """Every 15 minutes, unless refused credentials pause automatic runs."""
    return paused_by_credentials(staging) or dg.RunRequest(tags=trigger_tags("schedule"))


def ticket_poll_tick(
    context: dg.ScheduleEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """Poll the partition of the day the tick falls on (not the previous, complete day:
    this is the live poll), resuming from the live cursor."""
    paused = paused_by_credentials(staging)
    if paused:
        return paused
    tick = context.scheduled_execution_time
    key = tick.strftime("%Y-%m-%d")
    return dg.RunRequest(
        run_key=f"ticket-poll-{tick.isoformat()}",
        partition_key=key,
        tags=trigger_tags("schedule"),
    )


def full_reconciliation_tick(
    context: dg.ScheduleEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """Nightly, unless refused credentials pause automatic runs."""
    return paused_by_credentials(staging) or dg.RunRequest(tags=trigger_tags("schedule"))


def webhook_inbox_tick(
    context: dg.SensorEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """One run drains everything the webhook inbox holds unprocessed."""
    paused = paused_by_credentials(staging)
    if paused:
        return paused
    # The ledger alone says what is pending: no cursor, so a ledger that is recreated,
    # restored from a backup or moved to Postgres is read as it is, and deliveries are
    # never skipped for ids a previous ledger used.
    backlog = staging.store.inbox_backlog()
    if not backlog.pending:
        return dg.SkipReason("the webhook inbox has nothing unprocessed")
    # Coalesce: while one run is queued or draining, the deliveries arriving meanwhile
    # wait for the next tick rather than starting runs of their own.
    runs = dg.RunsFilter(job_name=webhook_events_job.name)
    busy = context.instance.get_run_ids(
        filters=dg.RunsFilter(job_name=webhook_events_job.name, statuses=DRAINING_STATUSES),
        limit=1,
    )
    if busy:
        return dg.SkipReason(
            f"{backlog.pending} deliveries pending; run {busy[0]} is draining the inbox"
        )
    if not backlog.claimable:
        return dg.SkipReason(
            f"{backlog.pending} deliveries pending, all claimed by a drain until its lease runs out"
        )
    oldest = backlog.oldest_received_at
    latest = context.instance.get_run_ids(filters=runs, limit=1)
    return dg.RunRequest(
        # The backlog as the ledger holds it, after the latest drain: one run per backlog
        # even if a tick is retried, while a drain that failed (its rows come back with
        # one more attempt) or a ledger restored to an older backlog gets a new key.
        run_key=f"webhook-inbox-{backlog.mark}-after-{latest[0] if latest else 'none'}",
        tags={
            **trigger_tags("webhook"),
            PENDING_TAG: str(backlog.pending),
            OLDEST_TAG: "" if oldest is None else oldest.isoformat(timespec="seconds"),
        },
    )


def standing_sync_tick(
    context: dg.ScheduleEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """Every 15 minutes (overdue follows the calendar), unless refused credentials pause
    automatic runs."""
    return paused_by_credentials(staging) or dg.RunRequest(tags=trigger_tags("schedule"))


def schedules_for(environ: Mapping[str, str]) -> list[dg.ScheduleDefinition]:
    """The schedules, with the crons and the on/off default the environment gives
    (`ML_CONNECTOR_*_CRON`, `ML_CONNECTOR_SCHEDULES_RUNNING`). `definitions.py` binds them
    when the code location loads; nothing here reads the environment at import."""
    status = _schedule_status(environ)

    def schedule(name: str, job: Any, cron: str, tick: Any) -> dg.ScheduleDefinition:
        return dg.schedule(
            name=name,
            job=job,
            cron_schedule=cron,
            default_status=status,
            execution_timezone="UTC",
        )(tick)

    return [
        schedule(
            "vendor_sync_every_15_minutes",
            vendor_sync_job,
            environ.get(settings.ENV_VENDOR_SYNC_CRON, settings.DEFAULT_VENDOR_SYNC_CRON),
            vendor_sync_tick,
        ),
        schedule(
            "ticket_poll_every_15_minutes",
            ticket_poll_job,
            environ.get(settings.ENV_TICKET_POLL_CRON, settings.DEFAULT_TICKET_POLL_CRON),
            ticket_poll_tick,
        ),
        schedule(
            "nightly_full_reconciliation",
            full_reconciliation_job,
            environ.get(settings.ENV_RECONCILE_CRON, settings.DEFAULT_RECONCILE_CRON),
            full_reconciliation_tick,
        ),
        schedule(
            "standing_sync_every_15_minutes",
            standing_sync_job,
            environ.get(settings.ENV_STANDING_SYNC_CRON, settings.DEFAULT_STANDING_SYNC_CRON),
            standing_sync_tick,
        ),
    ]


def inbox_sensor_for(environ: Mapping[str, str]) -> dg.SensorDefinition:
    """The webhook inbox sensor, at the interval the environment gives."""
    return dg.sensor(
        name="webhook_inbox_sensor",
        job=webhook_events_job,
        minimum_interval_seconds=inbox_sensor_interval_s(environ),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(webhook_inbox_tick)


# With the defaults, for tests and tools that evaluate them directly.
(
    vendor_sync_schedule,
    ticket_poll_schedule,
    full_reconciliation_schedule,
    standing_sync_schedule,
) = schedules_for({})
webhook_inbox_sensor = inbox_sensor_for({})


# What a run wrote, as tags on the run once it has succeeded, so the runs list can show
# only the runs that changed something (`ml-connector/outcome=wrote`) or hide the many
# that found nothing to do.
OUTCOME_TAG = "ml-connector/outcome"
WRITTEN_TAG = "ml-connector/written"
FAILED_TAG = "ml-connector/failed"
WRITE_COUNTS = ("created", "updated")


def _count(metadata: dict[str, dg.MetadataValue], key: str) -> int:
    value = metadata.get(key)
    raw = getattr(value, "value", None)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def outcome_tags(materializations: list[dg.AssetMaterialization]) -> dict[str, str]:
    """Tags saying what a run wrote to Zendesk and Intacct: created plus updated records
    over its assets, and the writes that failed (and went to quarantine)."""
    written = sum(_count(dict(m.metadata), k) for m in materializations for k in WRITE_COUNTS)
    failed = sum(_count(dict(m.metadata), "failed") for m in materializations)
    outcome = "failed-writes" if failed else "wrote" if written else "no-change"
    return {OUTCOME_TAG: outcome, WRITTEN_TAG: str(written), FAILED_TAG: str(failed)}


@dg.run_status_sensor(
    name="tag_runs_with_what_they_wrote",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tags each successful run with what it wrote (ml-connector/outcome, "
    "ml-connector/written, ml-connector/failed), to filter the runs list by.",
)
def tag_runs_with_what_they_wrote(context: dg.RunStatusSensorContext) -> None:
    run_id = context.dagster_run.run_id
    records = context.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    materializations = [
        m for r in records if (m := r.event_log_entry.asset_materialization) is not None
    ]
    if materializations:
        context.instance.add_run_tags(run_id, outcome_tags(materializations))
