"""Jobs, schedules and the webhook inbox sensor that keep the connector running unattended."""

import os

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.credentials import paused_by_credentials
from connector_pipeline.defs.resources import StagingResource
from connector_pipeline.defs.tickets import (
    intacct_ticket_records,
    zendesk_ticket_events,
    zendesk_tickets,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations

vendor_sync_job = dg.define_asset_job(
    "vendor_sync",
    selection=[intacct_vendors, zendesk_organizations],
    description="Intacct vendors changed since the watermark, then their Zendesk organizations.",
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
)


def _schedule_status() -> dg.DefaultScheduleStatus:
    running = os.environ.get(settings.ENV_SCHEDULES_RUNNING, "").lower() in ("1", "true", "yes")
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


@dg.schedule(
    name="vendor_sync_every_15_minutes",
    job=vendor_sync_job,
    cron_schedule=os.environ.get(settings.ENV_VENDOR_SYNC_CRON, settings.DEFAULT_VENDOR_SYNC_CRON),
    default_status=_schedule_status(),
    execution_timezone="UTC",
)
def vendor_sync_schedule(
    context: dg.ScheduleEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """Every 15 minutes, unless refused credentials pause automatic runs."""
    return paused_by_credentials(staging) or dg.RunRequest()


@dg.schedule(
    name="ticket_poll_every_15_minutes",
    job=ticket_poll_job,
    cron_schedule=os.environ.get(settings.ENV_TICKET_POLL_CRON, settings.DEFAULT_TICKET_POLL_CRON),
    default_status=_schedule_status(),
    execution_timezone="UTC",
)
def ticket_poll_schedule(
    context: dg.ScheduleEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """Poll the partition of the day the tick falls on (not the previous, complete day:
    this is the live poll), resuming from the live cursor."""
    paused = paused_by_credentials(staging)
    if paused:
        return paused
    tick = context.scheduled_execution_time
    key = tick.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"ticket-poll-{tick.isoformat()}", partition_key=key)


@dg.schedule(
    name="nightly_full_reconciliation",
    job=full_reconciliation_job,
    cron_schedule=os.environ.get(settings.ENV_RECONCILE_CRON, settings.DEFAULT_RECONCILE_CRON),
    default_status=_schedule_status(),
    execution_timezone="UTC",
)
def full_reconciliation_schedule(
    context: dg.ScheduleEvaluationContext, staging: StagingResource
) -> dg.RunRequest | dg.SkipReason:
    """Nightly, unless refused credentials pause automatic runs."""
    return paused_by_credentials(staging) or dg.RunRequest()


@dg.sensor(
    name="webhook_inbox_sensor",
    job=webhook_events_job,
    minimum_interval_seconds=int(
        os.environ.get(
            settings.ENV_INBOX_SENSOR_INTERVAL_S, settings.DEFAULT_INBOX_SENSOR_INTERVAL_S
        )
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def webhook_inbox_sensor(
    context: dg.SensorEvaluationContext, staging: StagingResource
) -> dg.SensorResult | dg.SkipReason:
    """One run per batch of new webhook deliveries. The cursor is the last inbox id asked
    for; the run drains every unprocessed row, so a row committed out of id order is still
    picked up by the next run."""
    last = int(context.cursor or 0)
    paused = paused_by_credentials(staging)
    if paused:
        return paused
    pending = staging.store.inbox_pending_ids(after_id=last)
    if not pending:
        return dg.SkipReason(f"no webhook deliveries after inbox id {last}")
    requests = [
        dg.RunRequest(run_key=f"webhook-inbox-{batch[0]}-{batch[-1]}")
        for batch in (
            pending[i : i + settings.INBOX_DRAIN_BATCH]
            for i in range(0, len(pending), settings.INBOX_DRAIN_BATCH)
        )
    ][:1]
    # One run drains everything pending, so one request per tick is enough.
    return dg.SensorResult(run_requests=requests, cursor=str(pending[-1]))
