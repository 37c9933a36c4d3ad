"""The first day of the ticket partitions is the deployment's, bound when the code location
loads: importing defs/tickets.py reads no environment."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.automation import ticket_poll_job
from connector_pipeline.defs.resources import resources_for
from connector_pipeline.defs.tickets import (
    TICKET_PARTITIONS,
    intacct_ticket_records,
    with_tickets_start,
    zendesk_ticket_events,
    zendesk_tickets,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations

# Resources only complete the definitions; nothing runs.
SANDBOX_ENV = {
    settings.ENV_INTACCT_SENDER_ID: "s",
    settings.ENV_INTACCT_SENDER_PASSWORD: "p",
    settings.ENV_INTACCT_COMPANY_ID: "c",
    settings.ENV_INTACCT_USER_ID: "u",
    settings.ENV_INTACCT_USER_PASSWORD: "p",
}


def test_the_asset_as_defined_starts_on_the_default_day() -> None:
    assert TICKET_PARTITIONS.start == datetime.fromisoformat(
        settings.DEFAULT_TICKETS_START_DATE
    ).replace(tzinfo=UTC)
    assert with_tickets_start(None) is zendesk_tickets


def test_the_configured_first_day_reaches_the_asset_and_its_job() -> None:
    configured = with_tickets_start("2025-03-01")
    defs = dg.Definitions(
        assets=[
            intacct_vendors,
            zendesk_organizations,
            configured,
            zendesk_ticket_events,
            intacct_ticket_records,
        ],
        jobs=[ticket_poll_job],
        resources=resources_for(SANDBOX_ENV),
    )
    first = datetime(2025, 3, 1, tzinfo=UTC)
    assert defs.get_assets_def(dg.AssetKey("zendesk_tickets")).partitions_def.start == first  # type: ignore[union-attr]
    job = defs.resolve_job_def("ticket_poll")
    assert job.partitions_def is not None and job.partitions_def.start == first  # type: ignore[attr-defined]
