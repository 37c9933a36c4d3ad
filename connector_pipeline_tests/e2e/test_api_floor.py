"""API calls of the vendor sync job, asset checks included, counted by the sandboxes
(`/_sandbox/stats`): the first sync finds hand-made organizations in one pass, a run where
nothing changed makes at most 3 calls, a run after 1 % changed at most the floor plus 2."""

from __future__ import annotations

from typing import Any

import dagster as dg

from connector_pipeline.defs.automation import vendor_sync_job
from connector_pipeline.defs.checks import ALL_CHECKS
from connector_pipeline.sandbox.scenario import seed_vendors
from connector_pipeline_tests.e2e.harness import Pipeline, pipeline
from connector_pipeline_tests.e2e.test_checks import ASSETS
from connector_pipeline_tests.e2e.test_full_sync import metadata

VENDORS = 400


def _requests(p: Pipeline) -> tuple[dict[str, int], dict[str, int]]:
    """Intacct HTTP requests (one name: a request may carry several functions), and
    Zendesk requests by endpoint."""
    return {"requests": p.intacct_stats()["requests"]}, p.zendesk_stats()["requests"]


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    changed = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {k: v for k, v in changed.items() if v and not k.split(" ")[-1].startswith("/_sandbox")}


def _run(p: Pipeline) -> tuple[dg.ExecuteInProcessResult, dict[str, int], dict[str, int]]:
    """One vendor_sync run, checks included: (result, Intacct calls, Zendesk calls)."""
    job = dg.Definitions(
        assets=ASSETS, asset_checks=ALL_CHECKS, jobs=[vendor_sync_job], resources=p.resources()
    ).resolve_job_def("vendor_sync")
    intacct_before, zendesk_before = _requests(p)
    result = job.execute_in_process(instance=p.instance)
    assert result.success
    intacct_after, zendesk_after = _requests(p)
    assert len(result.get_asset_check_evaluations()) >= 2  # the organization checks ran
    return result, _delta(intacct_before, intacct_after), _delta(zendesk_before, zendesk_after)


def test_vendor_sync_calls_next_to_the_floor(sqlite_url: str) -> None:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=VENDORS, preexisting_fraction=0.3)
        first, _, zendesk = _run(p)
        orgs: dict[str, Any] = metadata(first, "zendesk_organizations")
        assert orgs["lookup"] == "export"
        # One count and one export page, never a show_many per 100 vendors.
        assert not any("show_many" in k and "organizations" in k for k in zendesk), zendesk
        assert sum(v for k, v in zendesk.items() if "incremental/organizations" in k) == 1
        assert orgs["created"] + orgs["updated"] == VENDORS
        assert len(p.organizations()) == VENDORS

        _, intacct, zendesk = _run(p)
        unchanged_calls = sum(intacct.values()) + sum(zendesk.values())
        assert zendesk == {} and unchanged_calls <= 3, (intacct, zendesk)

        with p.sandboxes.intacct() as i:
            i.post("/_sandbox/vendors/modify", json={"count": VENDORS // 100}).raise_for_status()
        changed, intacct, zendesk = _run(p)
        assert metadata(changed, "zendesk_organizations")["updated"] == VENDORS // 100
        # The floor: the unchanged run's calls, one update_many and one job status read.
        floor = unchanged_calls + 2
        assert sum(intacct.values()) + sum(zendesk.values()) <= floor + 2, (intacct, zendesk)
