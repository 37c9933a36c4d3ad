"""The asset checks tell the truth about the two systems."""

from __future__ import annotations

from typing import cast

import dagster as dg
from click.testing import CliRunner

from connector_pipeline import settings
from connector_pipeline.cli import main
from connector_pipeline.defs.checks import ALL_CHECKS
from connector_pipeline.defs.tickets import intacct_ticket_records, zendesk_tickets
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.flows.organizations import QUARANTINE_EXTERNAL_ID
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
from connector_pipeline_tests.e2e.harness import Pipeline, pipeline
from connector_pipeline_tests.e2e.test_full_sync import metadata, ticket_range_tags

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
        quarantined = checks["intacct_ticket_records:quarantine_size"]
        assert not quarantined.passed  # tickets of the two unlinked organizations
        assert quarantined.severity == dg.AssetCheckSeverity.WARN
        unmatched = cast(int, quarantined.metadata["ticket_unmatched"].value)
        assert unmatched > 0
        assert quarantined.metadata["open"].value == unmatched
        # The failing check names the reason, with example keys, in its table.
        assert "is not linked to an Intacct vendor" in str(quarantined.description)
        assert "is not linked to an Intacct vendor" in quarantined.metadata["by_reason"].value  # type: ignore[operator]

        # The CLI tells the same story, from the same ledger found the same way.
        env = {settings.ENV_STAGING_DATABASE_URL: sqlite_url}
        listed = CliRunner().invoke(main, ["db", "quarantine"], env=env)
        assert listed.exit_code == 0, listed.output
        assert listed.output.splitlines()[-1] == f"{unmatched} open"
        summary = [line for line in listed.output.splitlines() if line.startswith(" ")]
        assert sum(int(line.split()[0]) for line in summary) == unmatched
        assert any("ticket_unmatched\torganization … is not linked" in line for line in summary)
        status = CliRunner().invoke(main, ["status"], env={**env, "DAGSTER_HOME": ""})
        assert status.exit_code == 0, status.output
        assert f"quarantine: {unmatched} open" in status.output
        assert "intacct_vendors/watermark" in status.output or "cursors" in status.output

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
        assert gone["external_id"] in failed.metadata["missing_sample"].value  # type: ignore[operator]


def test_external_ids_equal_but_for_case_fail_the_organization_check(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=5)
        with p.sandboxes.intacct() as intacct:
            intacct.post(
                "/_sandbox/vendors",
                json={
                    "vendors": [
                        {"VENDORID": "vcase-15", "NAME": "Lower Case Ltd"},
                        {"VENDORID": "VCASE-15", "NAME": "Upper Case Ltd"},
                    ]
                },
            ).raise_for_status()
        p.materialize([intacct_vendors, zendesk_organizations])

        # The older record has the organization; the other is not silently merged into it.
        external_ids = [o.get("external_id") for o in p.organizations()]
        assert "vcase-15" in external_ids and "VCASE-15" not in external_ids
        check = check_results(p)["zendesk_organizations:every_active_vendor_has_one_organization"]
        assert not check.passed
        assert check.metadata["external_id_collisions"].value == 1
        assert check.metadata["collision_sample"].value == "VCASE-15 / vcase-15"
        assert "'VCASE-15'" in str(check.description) and "'vcase-15'" in str(check.description)

        # It waits in quarantine, naming both records, until one of them is renamed.
        [item] = p.store.quarantine_list(QUARANTINE_EXTERNAL_ID)
        assert "'VCASE-15'" in item.reason and "'vcase-15'" in item.reason
        gateway = p.sandboxes.intacct_app.state.sandbox.gateway
        record = gateway.find_by_id("VENDOR", "VCASE-15")
        gateway.touch("VENDOR", record, {"VENDORID": "VCASE-16"}, scenario=True)
        result = p.materialize([intacct_vendors, zendesk_organizations])
        assert metadata(result, "zendesk_organizations")["external_id_collisions"] == 0
        assert p.store.quarantine_list(QUARANTINE_EXTERNAL_ID) == []
        assert "VCASE-16" in [o.get("external_id") for o in p.organizations()]
