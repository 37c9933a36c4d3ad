"""The code location: every asset, check, schedule, sensor and resource of ml-connector.

Loading it is when the deployment's settings are bound: secrets and endpoints as
`dg.EnvVar`s resolved at launch (`resources_from_env`), and what Dagster needs before any
run (the first day of the ticket partitions, the schedules' crons and default status, the
inbox sensor's interval, the source objects the freshness check covers) read here; the
modules of `defs/` read no environment when imported."""

from __future__ import annotations

import os

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.automation import (
    full_reconciliation_job,
    inbox_sensor_for,
    schedules_for,
    standing_sync_job,
    tag_runs_with_what_they_wrote,
    ticket_poll_job,
    vendor_sync_job,
    webhook_events_job,
)
from connector_pipeline.defs.checks import checks_for
from connector_pipeline.defs.credentials import CREDENTIAL_SENSORS
from connector_pipeline.defs.intacct_hints import intacct_hint_sensor
from connector_pipeline.defs.resources import resources_from_env
from connector_pipeline.defs.standing import intacct_standing, zendesk_standing
from connector_pipeline.defs.tickets import (
    intacct_ticket_records,
    with_tickets_start,
    zendesk_ticket_events,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations

defs = dg.Definitions(
    assets=[
        intacct_vendors,
        zendesk_organizations,
        with_tickets_start(os.environ.get(settings.ENV_TICKETS_START_DATE)),
        zendesk_ticket_events,
        intacct_ticket_records,
        intacct_standing,
        zendesk_standing,
    ],
    asset_checks=checks_for(os.environ),
    jobs=[
        vendor_sync_job,
        ticket_poll_job,
        webhook_events_job,
        full_reconciliation_job,
        standing_sync_job,
    ],
    schedules=schedules_for(os.environ),
    sensors=[
        inbox_sensor_for(os.environ),
        intacct_hint_sensor,
        *CREDENTIAL_SENSORS,
        tag_runs_with_what_they_wrote,
    ],
    resources=resources_from_env(),
    # The steps of every job here run one after another (each waits on the one before, and
    # the API pools serialize the rest), so a process per step buys nothing and costs a
    # Python start-up each: a webhook_events run took 7 s with the multiprocess executor,
    # 2 s in process. Pools and retry policies hold in process too.
    executor=dg.in_process_executor,
)
