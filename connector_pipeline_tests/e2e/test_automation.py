"""Backfills, the `dagster` command line, schedules and the webhook inbox sensor."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from connector_pipeline.defs.automation import (
    ticket_poll_schedule,
    vendor_sync_schedule,
    webhook_events_job,
    webhook_inbox_sensor,
)
from connector_pipeline.defs.resources import StagingResource
from connector_pipeline.defs.tickets import (
    LIVE_CURSOR,
    intacct_ticket_records,
    range_cursor,
    zendesk_ticket_events,
    zendesk_tickets,
)
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
from connector_pipeline.webhook.app import create_app as create_receiver
from connector_pipeline_tests.e2e.harness import TICKET_OBJECT, pipeline
from connector_pipeline_tests.support import serve_asgi

WEBHOOK_SECRET = "e2e-webhook-secret"
DELIVERY_TIMEOUT_S = 60


def test_backfill_of_seven_days_is_one_run_and_keeps_the_live_cursor(
    sqlite_url: str, tmp_path: Path
) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=100)
        p.materialize([intacct_vendors, zendesk_organizations])
        seed_tickets(p.sandboxes, tickets=800, days=20)
        today = datetime.now(UTC).date()
        p.materialize([zendesk_tickets], partition_key=today.isoformat())
        live_before = p.store.cursors()[LIVE_CURSOR]

        first, last = today - timedelta(days=12), today - timedelta(days=6)
        home = tmp_path / "dagster_home"
        home.mkdir()
        done = p.dagster_cli(
            [
                "asset",
                "materialize",
                "-m",
                "connector_pipeline.definitions",
                "--select",
                "zendesk_tickets",
                "--partition-range",
                f"{first.isoformat()}...{last.isoformat()}",
            ],
            home,
        )
        assert done.returncode == 0, done.stdout[-3000:]

        instance = dg.DagsterInstance.from_config(str(home))
        runs = instance.get_runs()
        assert len(runs) == 1, "a 7-day backfill must run as one run"
        assert runs[0].tags["dagster/asset_partition_range_start"] == first.isoformat()
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        instance.dispose()

        assert p.store.cursors()[LIVE_CURSOR] == live_before, "a backfill moved the live cursor"
        assert range_cursor(first.isoformat(), last.isoformat()) in p.store.cursors()
        start = datetime.combine(first, datetime.min.time(), UTC).timestamp()
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC).timestamp()
        expected = {t["id"] for t in p.tickets() if start <= t["generated_timestamp"] < end}
        staged = {t["ticket_id"] for t in p.store.tickets()}
        assert expected and expected <= staged


def test_schedules_evaluate(sqlite_url: str) -> None:
    tick = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    # Schedules read the ledger first: refused credentials pause them (test_credentials).
    resources = {"staging": StagingResource(database_url=sqlite_url)}
    with dg.build_schedule_context(scheduled_execution_time=tick, resources=resources) as context:
        request = ticket_poll_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-11-24"  # today's partition: the live poll
    assert request.run_key == f"ticket-poll-{tick.isoformat()}"

    with dg.build_schedule_context(scheduled_execution_time=tick, resources=resources) as context:
        result = vendor_sync_schedule.evaluate_tick(context)
    assert len(result.run_requests or []) == 1
    # Runs say why they were launched (README: "Finding runs by tag").
    for run_request in (request, *(result.run_requests or [])):
        assert run_request.tags["ml-connector/trigger"] == "schedule"


def test_webhook_deliveries_become_intacct_records_through_the_sensor(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=30)
        p.materialize([intacct_vendors, zendesk_organizations])
        receiver = create_receiver(store=p.store, secrets=[WEBHOOK_SECRET])
        with serve_asgi(receiver) as server, p.sandboxes.zendesk() as z:
            z.post(
                "/_sandbox/webhook",
                json={"url": f"{server.url}/webhooks/zendesk", "secret": WEBHOOK_SECRET},
            ).raise_for_status()
            orgs = [o for o in p.organizations() if o.get("external_id")][:3]
            created = [
                z.post(
                    "/_sandbox/tickets",
                    json={"subject": f"Pushed {n}", "organization_id": org["id"]},
                )
                .raise_for_status()
                .json()
                for n, org in enumerate(orgs)
            ]
            ids = [t["id"] if "id" in t else t["ticket"]["id"] for t in created]
            z.patch(f"/_sandbox/tickets/{ids[0]}", json={"priority": "urgent"}).raise_for_status()
            z.post(f"/_sandbox/tickets/{ids[1]}/solve").raise_for_status()
            deadline = time.monotonic() + DELIVERY_TIMEOUT_S
            while p.store.inbox_stats()["total"] < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
        assert p.store.inbox_stats()["total"] >= 5

        with dg.build_sensor_context(
            instance=p.instance, resources={"staging": p.resources()["staging"]}
        ) as context:
            result = webhook_inbox_sensor(context)
        assert isinstance(result, dg.RunRequest)
        job = dg.Definitions(
            assets=[zendesk_ticket_events, intacct_ticket_records],
            jobs=[webhook_events_job],
            resources=p.resources(),
        ).resolve_job_def("webhook_events")
        run = job.execute_in_process(instance=p.instance, tags=result.tags)
        assert run.success
        assert p.store.inbox_stats()["pending"] == 0

        records = {int(r["ticket_id"]): r for r in p.intacct_records(TICKET_OBJECT)}
        assert set(ids) <= set(records)
        tickets = {t["id"]: t for t in p.tickets()}
        for ticket_id in ids:
            assert records[ticket_id]["status"] == tickets[ticket_id]["status"]
        assert records[ids[0]]["priority"] == "urgent"
        assert records[ids[1]]["status"] == "solved"
        assert json.loads(json.dumps(records[ids[2]]))["subject"] == "Pushed 2"
