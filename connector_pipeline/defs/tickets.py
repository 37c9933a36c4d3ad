"""Zendesk tickets into the ledger (polled and pushed), and from the ledger into Intacct."""

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.common import (
    API_RETRY_POLICY,
    SyncRunConfig,
    rate_limits_as_retries,
    report,
)
from connector_pipeline.defs.resources import (
    ConnectorResource,
    IntacctResource,
    StagingResource,
    ZendeskResource,
)
from connector_pipeline.defs.vendors import zendesk_organizations
from connector_pipeline.flows import ticket_records
from connector_pipeline.flows.inbox import QUARANTINE_EVENT, InboxDrain
from connector_pipeline.flows.ticket_records import QUARANTINE_RECORD, QUARANTINE_UNMATCHED
from connector_pipeline.flows.tickets import (
    LIVE_CURSOR,
    QUARANTINE_TICKET,
    TicketWindow,
    poll_tickets,
    range_cursor,
)
from connector_pipeline.staging import utcnow

__all__ = [
    "LIVE_CURSOR",
    "QUARANTINE_EVENT",
    "QUARANTINE_RECORD",
    "QUARANTINE_TICKET",
    "QUARANTINE_UNMATCHED",
    "TICKET_PARTITIONS",
    "intacct_ticket_records",
    "range_cursor",
    "ticket_partitions",
    "with_tickets_start",
    "zendesk_ticket_events",
    "zendesk_tickets",
]

BACKFILL_TAG = "dagster/backfill"


def ticket_partitions(
    start_date: str = settings.DEFAULT_TICKETS_START_DATE,
) -> dg.DailyPartitionsDefinition:
    """Daily partitions of zendesk_tickets from `start_date`. Today's partition exists
    from midnight on, so the poll schedule can fill it as the day goes."""
    return dg.DailyPartitionsDefinition(start_date=start_date, end_offset=1)


# The asset as defined; the code location gives it the configured first day when it loads
# (`with_tickets_start`), so importing this module reads no environment.
TICKET_PARTITIONS = ticket_partitions()


def with_tickets_start(start_date: str | None) -> dg.AssetsDefinition:
    """zendesk_tickets with its partitions starting on `start_date` (the default when
    None)."""
    if not start_date:
        return zendesk_tickets
    partitions = ticket_partitions(start_date)
    return zendesk_tickets.map_asset_specs(
        lambda spec: spec.replace_attributes(partitions_def=partitions)
    )


def ticket_window(context: dg.AssetExecutionContext) -> TicketWindow:
    """The selected days as a half-open window; live when it reaches the present and the
    run is not part of a backfill (a backfill never moves the live cursor)."""
    window, keys = context.partition_time_window, context.partition_key_range
    live = window.end > utcnow() and BACKFILL_TAG not in context.run.tags
    name = LIVE_CURSOR if live else range_cursor(keys.start, keys.end)
    return TicketWindow(window.start, window.end, name, live)


@dg.asset(
    group_name="tickets",
    partitions_def=TICKET_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=settings.ZENDESK_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"zendesk"},
)
def zendesk_tickets(
    context: dg.AssetExecutionContext,
    zendesk: ZendeskResource,
    staging: StagingResource,
) -> dg.MaterializeResult:
    """Zendesk tickets changed in the selected days, read through the cursor export.

    One run covers the half-open window [first day 00:00 UTC, last day + 1 00:00 UTC) of the
    selected partitions, by `generated_timestamp`. A run whose window reaches the present
    and is not part of a backfill is the live poll: it resumes from the live cursor, so a
    re-run reads only what is new and nothing falls between two days. Any other run reads
    its window from its own resume cursor, and never moves the live cursor.
    """
    with rate_limits_as_retries():
        result = poll_tickets(zendesk.client, staging.store, ticket_window(context), utcnow())
    return report(result)


@dg.asset(
    group_name="tickets",
    pool=settings.ZENDESK_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"zendesk"},
)
def zendesk_ticket_events(
    zendesk: ZendeskResource,
    staging: StagingResource,
) -> dg.MaterializeResult:
    """Ticket changes pushed by Zendesk webhooks, drained from the inbox into the ledger."""
    with rate_limits_as_retries():
        result = InboxDrain(zendesk.client, staging.store).run()
    return report(result)


@dg.asset(
    group_name="tickets",
    deps=[zendesk_tickets, zendesk_ticket_events, zendesk_organizations],
    pool=settings.INTACCT_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"intacct"},
)
def intacct_ticket_records(
    context: dg.AssetExecutionContext,
    config: SyncRunConfig,
    intacct: IntacctResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Intacct ticket records (a custom object related to VENDOR) for the staged tickets."""
    flow = ticket_records.TicketRecordLoad(
        intacct.client,
        staging.store,
        connector.mapping().ticket_record,
        ticket_records.TicketRecordOptions(config.dry_run, config.full_refresh),
        context.log,
    )
    with rate_limits_as_retries():
        result = flow.run()
    return report(result, result.preview, ticket_records.PREVIEW_COLUMNS)
