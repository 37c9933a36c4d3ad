"""Organizations in bulk against the sandbox: jobs, per-record results, the 30-job limit,
duplicate names, and exactly-once creation across a crash."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest

from connector_pipeline.outcome import FailureKind
from connector_pipeline.zendesk import BulkItemResult, JobStatus, ZendeskClient
from connector_pipeline_tests.zendesk.conftest import RunningSandbox, running_sandbox


def _orgs(count: int, prefix: str = "Vendor") -> list[dict[str, Any]]:
    return [
        {"name": f"{prefix} {i:05d}", "external_id": f"{prefix[:1]}-{i:05d}", "notes": "n"}
        for i in range(count)
    ]


def test_5000_created_then_500_updated_with_every_result_checked() -> None:
    with running_sandbox(job_delay_s=0.05, plan_limit_per_minute=2500) as sandbox:
        client = sandbox.client()
        orgs = _orgs(5000)
        created = client.create_many_organizations(orgs)
        assert [r.index for r in created] == list(range(5000))
        assert all(r.ok and r.id is not None for r in created)
        held = {o["external_id"]: o for o in sandbox.sandbox.state.organization_list()}
        for result, org in zip(created, orgs, strict=True):
            assert held[org["external_id"]]["id"] == result.id  # result i is input i
        assert len(held) == 5000

        updates = [{"id": r.id, "notes": f"updated {r.index}"} for r in created[::10]]
        updated = client.update_many_organizations(updates)
        assert len(updated) == 500
        assert all(r.ok for r in updated)
        assert [r.id for r in updated] == [u["id"] for u in updates]
        by_id = {o["id"]: o for o in sandbox.sandbox.state.organization_list()}
        assert all(by_id[u["id"]]["notes"] == u["notes"] for u in updates)

        stats = sandbox.stats()
        assert stats["requests"]["POST /organizations/create_many"] == 50
        assert stats["requests"]["PUT /organizations/update_many"] == 5
        assert stats["max_jobs_in_flight_seen"] <= 30
        assert "429" not in stats["responses_by_status"]
        assert stats["writes"]["organization"] == {"create": 5000, "update": 500}
        assert stats["writes"]["ticket"] == {}  # the connector never writes tickets
        client.close()


def test_never_more_than_30_jobs_in_flight() -> None:
    # Jobs outlive the 30 submissions by far, so the limit, not timing, caps the count.
    with running_sandbox(job_delay_s=1.5) as sandbox:
        client = sandbox.client(job_poll_initial_s=0.05)
        results = client.create_many_organizations(_orgs(3500))  # 35 jobs
        assert len(results) == 3500 and all(r.ok for r in results)
        stats = sandbox.stats()
        assert stats["max_jobs_in_flight_seen"] == 30
        assert stats["rate_limited"] == {} and "429" not in stats["responses_by_status"]
        client.close()


def test_sandbox_refuses_a_31st_job(zendesk: RunningSandbox) -> None:
    with zendesk.scenario() as s:
        s.post("/_sandbox/config", json={"job_delay_s": 30}).raise_for_status()
    with zendesk.api() as api:
        for i in range(30):
            ok = api.post(
                "/api/v2/organizations/create_many.json",
                json={"organizations": [{"name": f"job {i}"}]},
            )
            assert ok.status_code == 200
        refused = api.post(
            "/api/v2/organizations/create_many.json", json={"organizations": [{"name": "x"}]}
        )
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "TooManyJobs" and len(body["current_job_ids"]) == 30
    assert "remaining=0" in refused.headers["zendesk-ratelimit-inflight-jobs"]


def test_duplicate_name_inside_a_completed_job_is_reported_per_record(
    zendesk: RunningSandbox,
) -> None:
    client = zendesk.client()
    first = client.create_many_organizations(
        [{"name": "Acme", "external_id": "A1"}, {"name": "Globex", "external_id": "G1"}]
    )
    assert all(r.ok for r in first)
    batch = [
        {"name": "Initech", "external_id": "I1"},
        {"name": " acme ", "external_id": "A2"},  # trimmed, case-insensitive: taken
        {"name": "Umbrella", "external_id": "U1"},
    ]
    results = client.create_many_organizations(batch)
    assert [r.ok for r in results] == [True, False, True]
    failed = results[1]
    assert failed.index == 1 and failed.kind is FailureKind.DUPLICATE_NAME and failed.id is None
    assert "has already been taken" in (failed.details or "")
    # Renaming onto a taken name in update_many: the completed job carries the failure.
    renames = [{"id": first[1].id, "name": "Initech"}, {"id": first[0].id, "notes": "kept"}]
    updated = client.update_many_organizations(renames)
    assert updated[0] == BulkItemResult(
        0,
        False,
        first[1].id,
        "OrganizationUpdateFailed",
        updated[0].details,
        FailureKind.DUPLICATE_NAME,
    )
    assert updated[1].ok and updated[1].id == first[0].id
    names = sorted(o["name"] for o in zendesk.sandbox.state.organization_list())
    assert names == ["Acme", "Globex", "Initech", "Umbrella"]
    client.close()


def test_held_back_duplicate_name_job_shape_maps_back_by_index() -> None:
    """The shape of the live recording described in SOURCES.md (held back): one success
    without an index, failures with index, id and a double-spaced details text."""
    data = {
        "job_status": {
            "id": "V3-x",
            "status": "completed",
            "total": 3,
            "progress": 3,
            "results": [
                {"action": "update", "id": 11, "status": "Updated", "success": True},
                {
                    "index": 1,
                    "error": "OrganizationUpdateFailed",
                    "id": 12,
                    "details": "Name:  Same has already been taken",
                },
                {
                    "index": 2,
                    "error": "OrganizationUpdateFailed",
                    "id": 13,
                    "details": "Name:  Same has already been taken",
                },
            ],
        }
    }
    job = JobStatus.from_api(data)
    assert [f.index for f in job.failures] == [1, 2]
    outcome = job.outcome_for([{"id": 11}, {"id": 12}, {"id": 13}])
    assert [(r.index, r.ok, r.id, r.kind) for r in outcome] == [
        (0, True, 11, None),
        (1, False, 12, FailureKind.DUPLICATE_NAME),
        (2, False, 13, FailureKind.DUPLICATE_NAME),
    ]
    # Out-of-order unindexed success items are matched by id, not by position.
    shuffled = JobStatus.from_api(
        {
            "id": "V3-y",
            "status": "completed",
            "results": [
                {"index": 0, "error": "OrganizationUpdateFailed", "id": 21, "details": "x"},
                {"action": "update", "id": 23, "status": "Updated", "success": True},
                {"action": "update", "id": 22, "status": "Updated", "success": True},
            ],
        }
    )
    mapped = shuffled.outcome_for([{"id": 21}, {"id": 22}, {"id": 23}])
    assert [(r.ok, r.id) for r in mapped] == [(False, 21), (True, 22), (True, 23)]
    failed_job = JobStatus.from_api({"id": "V3-z", "status": "failed", "results": None})
    assert failed_job.done and not failed_job.succeeded
    assert [r.error for r in failed_job.outcome_for([{}, {}])] == ["JobFailed", "JobFailed"]


def _sync(client: ZendeskClient, orgs: Sequence[Mapping[str, Any]]) -> list[BulkItemResult]:
    """What the pipeline does (DESIGN.md, decision 4): look up by external id first and
    create only what is missing."""
    found = client.show_many_organizations(external_ids=[o["external_id"] for o in orgs])
    known = {str(o["external_id"]).casefold() for o in found}
    missing = [o for o in orgs if str(o["external_id"]).casefold() not in known]
    return client.create_many_organizations(missing) if missing else []


class _Crash(Exception):
    pass


def _crash(_: float) -> None:
    raise _Crash("process died after submitting the jobs")


def test_crash_after_bulk_create_then_rerun_creates_no_duplicate() -> None:
    with running_sandbox(job_delay_s=0.3) as sandbox:
        orgs = _orgs(250)
        doomed = sandbox.client(sleep=_crash)  # dies where it would start polling
        with pytest.raises(_Crash):
            doomed.create_many_organizations(orgs)
        doomed.close()
        assert sandbox.stats()["requests"]["POST /organizations/create_many"] == 3

        time.sleep(0.5)  # the jobs finish on Zendesk's side, unobserved
        rerun = sandbox.client()
        assert _sync(rerun, [dict(o, external_id=o["external_id"].lower()) for o in orgs]) == []
        stats = sandbox.stats()
        assert stats["requests"]["POST /organizations/create_many"] == 3  # nothing new
        assert stats["requests"]["GET /organizations/show_many"] == 3
        assert len(sandbox.sandbox.state.organization_list()) == 250
        rerun.close()


def test_immediate_rerun_while_jobs_still_run_creates_no_duplicate() -> None:
    with running_sandbox(job_delay_s=1.5) as sandbox:
        orgs = _orgs(120)
        doomed = sandbox.client(sleep=_crash)
        with pytest.raises(_Crash):
            doomed.create_many_organizations(orgs)
        doomed.close()
        rerun = sandbox.client()
        results = _sync(rerun, orgs)  # the lookup runs before the lost jobs complete
        assert len(results) == 120 and not any(r.ok for r in results)
        assert all("External ID" in (r.details or "") for r in results)
        assert {r.kind for r in results} == {FailureKind.CONFLICT}  # the external id, not the name
        assert len(sandbox.sandbox.state.organization_list()) == 120
        assert _sync(rerun, orgs) == []
        rerun.close()


def test_show_many_search_upsert_and_list(zendesk: RunningSandbox) -> None:
    client = zendesk.client()
    created = client.create_many_organizations(_orgs(230))
    external_ids = [f"v-{i:05d}" for i in range(230)] + ["missing"]
    found = client.show_many_organizations(external_ids=external_ids)  # 3 calls of <= 100
    assert len(found) == 230
    by_id = client.show_many_organizations(ids=[r.id for r in created if r.id][:150])
    assert len(by_id) == 150
    assert client.search_organizations(external_id="V-00007")[0]["name"] == "Vendor 00007"
    assert client.search_organizations(name="vendor 00008")[0]["external_id"] == "V-00008"
    org, was_created = client.create_or_update_organization(
        {"external_id": "v-00009", "notes": "upserted"}
    )
    assert not was_created and org["notes"] == "upserted" and org["name"] == "Vendor 00009"
    org, was_created = client.create_or_update_organization(
        {"external_id": "NEW-1", "name": "Brand New"}
    )
    assert was_created
    comma, _ = client.create_or_update_organization({"external_id": "V,1", "name": "Comma"})
    assert [o["id"] for o in client.show_many_organizations(external_ids=["v,1"])] == [comma["id"]]
    listed = list(client.iter_organizations(page_size=50))
    assert len(listed) == 232 and len({o["id"] for o in listed}) == 232
    calls = client.calls_by_endpoint()
    assert calls["GET /organizations/show_many"] == 3 + 2
    assert calls["GET /organizations"] == 5
    client.close()


def test_update_many_same_change_and_destroy_many(zendesk: RunningSandbox) -> None:
    client = zendesk.client()
    created = client.create_many_organizations(_orgs(150))
    ids = [r.id for r in created if r.id is not None]
    results = client.update_many_organizations_same({"notes": "bulk"}, ids=ids)
    assert len(results) == 150 and all(r.ok for r in results)
    by_external = client.update_many_organizations_same(
        {"tags": ["vip"]}, external_ids=["V-00001", "nope"]
    )
    assert [r.ok for r in by_external] == [True, False]
    held = zendesk.sandbox.state.organization_list()
    assert all(o["notes"] == "bulk" for o in held)
    jobs = client.destroy_many_organizations(ids[:120])
    assert all(job.succeeded for job in jobs)
    assert len(zendesk.sandbox.state.organization_list()) == 30
    client.close()


def test_job_lifecycle_is_visible(zendesk: RunningSandbox) -> None:
    with zendesk.scenario() as s:
        s.post("/_sandbox/config", json={"job_delay_s": 2.0}).raise_for_status()
    with zendesk.api() as api:
        job = api.post(
            "/api/v2/organizations/create_many", json={"organizations": [{"name": "slow"}]}
        ).json()["job_status"]
        seen = [job["status"]]
        deadline = time.monotonic() + 10
        while seen[-1] != "completed" and time.monotonic() < deadline:
            time.sleep(0.1)
            many = api.get("/api/v2/job_statuses/show_many", params={"ids": job["id"]}).json()
            seen.append(many["job_statuses"][0]["status"])
        assert api.get(f"/api/v2/job_statuses/{job['id']}").status_code == httpx.codes.OK
    assert seen[0] == "queued" and "working" in seen and seen[-1] == "completed"
    assert seen.index("working") < seen.index("completed")
