"""The asset checks tell the truth about the two systems."""

from __future__ import annotations

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.checks import ALL_CHECKS
from connector_pipeline.defs.tickets import intacct_ticket_records, zendesk_tickets
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
from connector_pipeline_tests.e2e.harness import Pipeline, pipeline
from connector_pipeline_tests.e2e.test_full_sync import ticket_range_tags

ASSETS = [intacct_vendors, zendesk_organizations, zendesk_tickets, intacct_ticket_records]


def check_results(
    p: Pipeline, *, against_zendesk: bool = True
) -> dict[str, dg.AssetCheckEvaluation]:
    job = dg.Definitions(
        assets=[*ASSETS],
        asset_checks=ALL_CHECKS,
        resources=p.resources(),
        jobs=[dg.define_asset_job("checks_only", selection=dg.AssetSelection.all_asset_checks())],
    ).resolve_job_def("checks_only")
    tags = {settings.ZENDESK_COMPARISON_TAG: "true"} if against_zendesk else {}
    result = job.execute_in_process(instance=p.instance, raise_on_error=False, tags=tags)
    return {
        f"{e.asset_key.path[-1]}:{e.check_name}": e for e in result.get_asset_check_evaluations()
    }


def test_checks_pass_after_a_sync_and_catch_what_goes_wrong(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=40, unlinked_organizations=2)
        p.materialize([intacct_vendors, zendesk_organizations])
        seed_tickets(p.sandboxes, tickets=80, days=3)
        p.materialize([zendesk_tickets, intacct_ticket_records], tags=ticket_range_tags(days=4))

        checks = check_results(p)
        assert checks["zendesk_organizations:every_active_vendor_has_one_organization"].passed
        assert checks["zendesk_organizations:no_duplicate_external_ids"].passed
        assert checks["zendesk_organizations:quarantine_size"].passed
        assert checks["intacct_vendors:cursor_freshness"].passed
        unmatched = checks["intacct_ticket_records:unmatched_tickets"]
        assert not unmatched.passed  # tickets of the two unlinked organizations
        assert unmatched.severity == dg.AssetCheckSeverity.WARN
        assert unmatched.metadata["unmatched"].value > 0

        # Someone deletes an organization in Zendesk: the check notices.
        gone = next(o for o in p.organizations() if o.get("external_id"))
        with p.sandboxes.zendesk() as z:
            z.delete(
                "/api/v2/organizations/destroy_many.json",
                params={"ids": gone["id"]},
                auth=(f"{p.env['ZENDESK_EMAIL']}/token", p.env["ZENDESK_API_TOKEN"]),
            ).raise_for_status()
        # Outside the nightly reconciliation the checks read the ledger only: no call to
        # Zendesk, and the deletion waits for the nightly comparison.
        before = p.zendesk_stats()["requests_total"]
        ledger_only = check_results(p, against_zendesk=False)
        assert p.zendesk_stats()["requests_total"] == before
        ledger_check = ledger_only["zendesk_organizations:every_active_vendor_has_one_organization"]
        assert ledger_check.passed and ledger_check.metadata["api_calls"].value == 0
        assert ledger_check.metadata["compared_with"].value == "ledger"

        checks = check_results(p)
        failed = checks["zendesk_organizations:every_active_vendor_has_one_organization"]
        assert not failed.passed
        assert failed.metadata["missing"].value == 1
        assert gone["external_id"] in failed.metadata["missing_sample"].value
