"""The product path against both sandboxes at realistic settings (Zendesk Enterprise,
700 requests/minute, 10/minute on incremental exports, 60 s windows; Intacct one request
at a time): API calls and wall time of

- a full sync of 2,000 vendors into organizations,
- a full load of 5,000 tickets over 30 days into Intacct records,
- an incremental run after 20 vendors and 50 tickets changed,
- a run where nothing changed,
- the nightly full reconciliation (every vendor re-read, organizations compared with
  Zendesk, every ticket record re-planned) when nothing drifted.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from bench.common import main, peak_rss_mib
from connector_pipeline import settings
from connector_pipeline.defs.resources import resources_for
from connector_pipeline.defs.tickets import intacct_ticket_records, zendesk_tickets
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import run_sandboxes, seed_tickets, seed_vendors
from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig

VENDORS = 2000
TICKETS = 5000


def _run(
    assets: list[Any], resources: dict[str, Any], instance: dg.DagsterInstance, **kwargs: Any
) -> dict[str, Any]:
    started = time.perf_counter()
    result = dg.materialize(assets, resources=resources, instance=instance, **kwargs)
    assert result.success
    out: dict[str, Any] = {"wall_s": round(time.perf_counter() - started, 2)}
    for event in result.get_asset_materialization_events():
        meta = {
            k: v.value
            for k, v in event.materialization.metadata.items()
            if k != "preview" and isinstance(v.value, int | float | str | bool)
        }
        out[event.asset_key.path[-1]] = meta
    out["api_calls"] = sum(m.get("api_calls", 0) for k, m in out.items() if isinstance(m, dict))
    return out


def _names(assets: list[Any]) -> list[str]:
    return [a.key.path[-1] for a in assets]


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ledger_url = f"sqlite:///{Path(tmp) / 'staging.db'}"
        with run_sandboxes(
            intacct_config=IntacctSandboxConfig(),
            zendesk_config=ZendeskSandboxConfig.for_plan("enterprise", export_lag_s=0.0),
        ) as sandboxes:
            resources = resources_for(
                {**sandboxes.env, settings.ENV_STAGING_DATABASE_URL: ledger_url}
            )
            instance = dg.DagsterInstance.ephemeral()
            seed_vendors(sandboxes, vendors=VENDORS, preexisting_fraction=0.0)
            vendor_assets = [intacct_vendors, zendesk_organizations]
            full_vendor_sync = _run(vendor_assets, resources, instance)

            seed_tickets(sandboxes, tickets=TICKETS, days=30)
            today = datetime.now(UTC).date()
            tags = {
                "dagster/asset_partition_range_start": (today - timedelta(days=31)).isoformat(),
                "dagster/asset_partition_range_end": today.isoformat(),
            }
            ticket_assets = [zendesk_tickets, intacct_ticket_records]
            full_ticket_load = _run(ticket_assets, resources, instance, tags=tags)

            with sandboxes.intacct() as i:
                i.post("/_sandbox/vendors/modify", json={"count": 20}).raise_for_status()
            with sandboxes.zendesk() as z:
                open_ids = [
                    t["id"]
                    for t in z.get("/_sandbox/tickets").json()
                    if t["status"] in ("new", "open", "pending") and t.get("organization_id")
                ][:50]
                for ticket_id in open_ids:
                    z.patch(f"/_sandbox/tickets/{ticket_id}", json={"priority": "urgent"})
            incremental_vendors = _run(vendor_assets, resources, instance)
            incremental_tickets = _run(
                ticket_assets, resources, instance, partition_key=today.isoformat()
            )
            unchanged_vendors = _run(vendor_assets, resources, instance)
            unchanged_tickets = _run(
                ticket_assets, resources, instance, partition_key=today.isoformat()
            )
            full = {"config": {"full_refresh": True}}
            reconciliation = _run(
                [*vendor_assets, intacct_ticket_records],
                resources,
                instance,
                run_config={
                    "ops": dict.fromkeys(_names([*vendor_assets, intacct_ticket_records]), full)
                },
            )
            with sandboxes.intacct() as i:
                intacct_stats = i.get("/_sandbox/stats").json()
            with sandboxes.zendesk() as z:
                zendesk_stats = z.get("/_sandbox/stats").json()
    return {
        "vendors": VENDORS,
        "tickets": TICKETS,
        "full_vendor_sync": full_vendor_sync,
        "full_ticket_load": full_ticket_load,
        "incremental_20_vendors": incremental_vendors,
        "incremental_50_tickets": incremental_tickets,
        "no_change_vendor_sync": unchanged_vendors,
        "no_change_ticket_poll": unchanged_tickets,
        "full_reconciliation_no_drift": reconciliation,
        "intacct_requests_total": intacct_stats.get("requests"),
        "zendesk_requests_total": zendesk_stats.get("requests_total"),
        "zendesk_rate_limited": zendesk_stats.get("rate_limited"),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


if __name__ == "__main__":
    main("pipeline_sync", run)
