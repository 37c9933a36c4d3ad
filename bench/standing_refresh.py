"""Financial standing for 10,000 vendors against both sandboxes (Zendesk Enterprise
limits): API calls of

- the first standing refresh (every bill and payment read, every organization written),
- a refresh on a day when nothing changed (goal: <= 3 Intacct calls, 0 Zendesk calls),
- a refresh after 1 % of the vendors were touched by a bill or a payment (goal: at most
  the pages of changed bills and payments, plus one update_many per 100 changed
  organizations),
- the next calendar day with nothing changed in Intacct (overdue moves by itself: every
  overdue vendor's "days overdue" changes, so those organizations are written),
- and, for the choice of approach, reading every vendor's own TOTALDUE / ONHOLD /
  CREDITLIMIT in bulk (2,000 per query page), as the alternative would on every run.

Usage: python -m bench.standing_refresh
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from bench.common import main, peak_rss_mib
from connector_pipeline import settings
from connector_pipeline.defs.resources import resources_for
from connector_pipeline.defs.standing import intacct_standing, zendesk_standing
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.flows.zendesk_setup import setup_organization_fields
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import RunningSandboxes, run_sandboxes
from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig
from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.zendesk import ZendeskClient

VENDORS = 10_000
BILLS_PER_VENDOR = 3  # up to; about half of them paid
TOUCHED = VENDORS // 100
VENDOR_STANDING_FIELDS = ["RECORDNO", "VENDORID", "TOTALDUE", "ONHOLD", "CREDITLIMIT"]


def _refresh(resources: dict[str, Any], instance: dg.DagsterInstance, as_of: str) -> dict[str, Any]:
    started = time.perf_counter()
    config = {"config": {"as_of": as_of}}
    result = dg.materialize(
        [intacct_standing, zendesk_standing],
        resources=resources,
        instance=instance,
        run_config={"ops": {"intacct_standing": config, "zendesk_standing": config}},
    )
    assert result.success
    out: dict[str, Any] = {"wall_s": round(time.perf_counter() - started, 2)}
    for event in result.get_asset_materialization_events():
        assert event.asset_key is not None
        out[event.asset_key.path[-1]] = {
            k: v.value
            for k, v in event.materialization.metadata.items()
            if k != "preview" and isinstance(v.value, int | float | str | bool)
        }
    return out


def _touch(sandboxes: RunningSandboxes, today: str) -> dict[str, int]:
    """Half of the touched vendors get a new bill, the other half pay an open one."""
    rng = random.Random(14)
    with sandboxes.intacct() as c:
        bills = c.get("/_sandbox/records/APBILL").raise_for_status().json()
        open_bills = [b for b in bills if b["STATE"] in ("Posted", "Partially Paid")]
        payers = rng.sample(open_bills, TOUCHED // 2)
        paying = {b["VENDORID"] for b in payers}
        others = [f"V{n:05d}" for n in range(1, VENDORS + 1) if f"V{n:05d}" not in paying]
        for vendor_id in rng.sample(others, TOUCHED - len(payers)):
            c.post(
                "/_sandbox/vendor/documents",
                json={"party_id": vendor_id, "amount": "420.00", "due_date": today},
            ).raise_for_status()
        for bill in payers:
            c.post(
                "/_sandbox/vendor/payments",
                json={"record_no": bill["RECORDNO"], "paid_on": today},
            ).raise_for_status()
    return {"bills_posted": TOUCHED - len(payers), "bills_paid": len(payers)}


def _vendor_bulk_read(env: dict[str, str]) -> dict[str, Any]:
    """The alternative: every vendor's own standing fields, 2,000 per page, every run."""
    with IntacctClient.from_env(env) as client:
        started = time.perf_counter()
        rows = sum(len(p) for p in client.iter_changed("VENDOR", VENDOR_STANDING_FIELDS, None))
        return {
            "vendors_read": rows,
            "intacct_calls": client.http_calls,
            "wall_s": round(time.perf_counter() - started, 2),
        }


def run() -> dict[str, Any]:
    today = datetime.now(UTC).date()
    with tempfile.TemporaryDirectory() as tmp:
        ledger_url = f"sqlite:///{Path(tmp) / 'staging.db'}"
        with run_sandboxes(
            intacct_config=IntacctSandboxConfig(seed_vendors=VENDORS),
            zendesk_config=ZendeskSandboxConfig.for_plan("enterprise", export_lag_s=0.0),
        ) as sandboxes:
            env = {**sandboxes.env, settings.ENV_STAGING_DATABASE_URL: ledger_url}
            resources = resources_for(env)
            instance = dg.DagsterInstance.ephemeral()
            with sandboxes.intacct() as c:
                seeded = c.post(
                    "/_sandbox/ledger/seed", json={"per_party": BILLS_PER_VENDOR, "seed": 14}
                ).json()
            mapping = ConnectorMapping.from_yaml(settings.DEFAULT_MAPPING_FILE.read_text())
            with ZendeskClient.from_env(env) as zendesk:
                setup_organization_fields(zendesk, mapping.standing)
            vendor_sync = dg.materialize(
                [intacct_vendors, zendesk_organizations], resources=resources, instance=instance
            )
            assert vendor_sync.success
            first = _refresh(resources, instance, today.isoformat())
            unchanged = _refresh(resources, instance, today.isoformat())
            touched = _touch(sandboxes, today.isoformat())
            after_touch = _refresh(resources, instance, today.isoformat())
            next_day = _refresh(resources, instance, (today + timedelta(days=1)).isoformat())
            bulk = _vendor_bulk_read(env)
    return {
        "vendors": VENDORS,
        "seeded_bills": seeded,
        "first_refresh": first,
        "unchanged_day": unchanged,
        "touched": touched,
        "one_percent_touched": after_touch,
        "next_calendar_day_no_intacct_change": next_day,
        "alternative_vendor_bulk_read_per_run": bulk,
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


if __name__ == "__main__":
    main("standing_refresh", run)
