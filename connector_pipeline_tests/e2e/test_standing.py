"""Financial standing end to end: the real clients against both sandboxes, real Dagster
runs, on both ledgers. Days pass by the assets' `as_of` setting, not by waiting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from click.testing import CliRunner

from connector_pipeline.cli import main as cli
from connector_pipeline.defs.standing import intacct_standing, zendesk_standing
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline_tests.e2e.harness import TICKET_OBJECT, Pipeline, pipeline

VENDORS = 20
TODAY = datetime.now(UTC).date()


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None and e.asset_key.path[-1] == asset
    ]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def refresh(p: Pipeline, as_of: date = TODAY, **options: Any) -> dg.ExecuteInProcessResult:
    config = {"as_of": as_of.isoformat(), **options}
    return p.materialize(
        [intacct_standing, zendesk_standing],
        config={"intacct_standing": config, "zendesk_standing": config},
    )


def standing_of(p: Pipeline, vendor_id: str) -> dict[str, Any]:
    (org,) = [o for o in p.organizations() if o.get("external_id") == vendor_id]
    return dict(org["organization_fields"])


def post(p: Pipeline, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with p.sandboxes.intacct() as c:
        return dict(c.post(f"/_sandbox/{path}", json=body).raise_for_status().json())


def setup_zendesk(p: Pipeline, *args: str) -> str:
    result = CliRunner().invoke(cli, ["setup", "zendesk", *args], env=p.sandboxes.env)
    assert result.exit_code == 0, result.output
    return result.output


def test_standing_follows_bills_payments_the_calendar_and_holds(ledger_url: str) -> None:
    config = IntacctSandboxConfig(ticket_object=TICKET_OBJECT, seed_vendors=VENDORS)
    with pipeline(ledger_url, intacct_config=config) as p:
        # Set-up: a dry run creates nothing; the real one creates the nine fields; again, none.
        assert "9 would create" in setup_zendesk(p, "--dry-run")
        assert "9 created" in setup_zendesk(p)
        assert "0 created, 9 present" in setup_zendesk(p)
        p.materialize([intacct_vendors, zendesk_organizations])
        refresh(p)
        before = standing_of(p, "V00001")
        assert before["intacct_total_due"] == 0 and before["intacct_open_items"] == 0

        # A bill posted moves total due and open count in the next run.
        due = TODAY + timedelta(days=10)
        bill = post(
            p, "vendor/documents", {"party_id": "V00001", "amount": "1250.00", "due_date": str(due)}
        )
        post(p, "vendor/documents", {"party_id": "V00001", "amount": "50.00", "due_date": str(due)})
        run = refresh(p)
        assert metadata(run, "zendesk_standing")["updated"] == 1
        after = standing_of(p, "V00001")
        assert after["intacct_total_due"] == 1300.0
        assert after["intacct_open_items"] == 2
        assert after["intacct_standing"] == "ap-good"

        # A payment lowers them and sets the last payment date.
        post(p, "vendor/payments", {"record_no": bill["RECORDNO"], "paid_on": str(TODAY)})
        refresh(p)
        paid = standing_of(p, "V00001")
        assert paid["intacct_total_due"] == 50.0
        assert paid["intacct_open_items"] == 1
        assert paid["intacct_last_payment"] == TODAY.isoformat()

        # An unchanged day writes nothing: 0 Zendesk calls, <= 3 Intacct calls.
        run = refresh(p)
        assert metadata(run, "intacct_standing")["api_calls"] <= 3
        assert metadata(run, "zendesk_standing")["api_calls"] == 0

        # The due date passes with nothing changed in Intacct: overdue and band move.
        writes = p.intacct_stats()["scenario_writes"]
        later = due + timedelta(days=5)
        preview = refresh(p, later, dry_run=True)  # a dry run previews, writes nothing
        assert metadata(preview, "zendesk_standing")["would_update"] == 1
        assert standing_of(p, "V00001")["intacct_standing"] == "ap-good"
        refresh(p, later)
        overdue = standing_of(p, "V00001")
        assert overdue["intacct_overdue_amount"] == 50.0
        assert overdue["intacct_days_overdue"] == 5
        assert overdue["intacct_standing"] == "ap-watch"
        assert p.intacct_stats()["scenario_writes"] == writes

        # A vendor put on hold moves the band to hold (after the vendor read sees it).
        post(p, "vendor/hold", {"party_ids": ["V00002"]})
        p.materialize([intacct_vendors, zendesk_organizations])
        refresh(p, later)
        held = standing_of(p, "V00002")
        assert held["intacct_standing"] == "ap-hold" and held["intacct_on_hold"] is True
