"""The sandbox's own promises: deterministic seeding, plan limits and 429 bodies, write
counters that tell protocol writes from scenario changes, tickets, faults and reset."""

from __future__ import annotations

import time

import httpx
import pytest

from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig, sandbox_env
from connector_pipeline_tests.zendesk.conftest import RunningSandbox, running_sandbox


def _seed(sandbox: RunningSandbox, **body: object) -> dict:
    with sandbox.scenario() as s:
        return dict(s.post("/_sandbox/seed", json=body).raise_for_status().json())


def test_seed_is_deterministic() -> None:
    snapshots = []
    for _ in range(2):
        with running_sandbox() as sandbox:
            _seed(sandbox, organizations=20, tickets=200, days=30, seed=7, now=1_790_000_000)
            with sandbox.scenario() as s:
                snapshots.append(
                    (s.get("/_sandbox/organizations").json(), s.get("/_sandbox/tickets").json())
                )
    (orgs_a, tickets_a), (orgs_b, tickets_b) = snapshots
    strip = ("created_at", "updated_at")
    assert [{k: v for k, v in o.items() if k not in strip} for o in orgs_a] == [
        {k: v for k, v in o.items() if k not in strip} for o in orgs_b
    ]
    assert tickets_a == tickets_b and len(tickets_a) == 200
    assert len({o["name"] for o in orgs_a}) == 20
    statuses = {t["status"] for t in tickets_a}
    assert statuses == {"new", "open", "pending", "hold", "solved", "closed"}
    assert all(t["generated_timestamp"] < 1_790_000_000 for t in tickets_a)


def test_seed_spreads_tickets_over_chosen_organizations(zendesk: RunningSandbox) -> None:
    seeded = _seed(zendesk, organizations=[{"name": "A", "external_id": "a"}, {"name": "B"}])
    chosen = seeded["organization_ids"][:1]
    _seed(zendesk, tickets=50, organization_ids=chosen, unassigned_fraction=0.2)
    _seed(zendesk, tickets=10, unassigned_fraction=1.0)
    tickets = zendesk.sandbox.state.all_tickets()
    linked = {t["organization_id"] for t in tickets[:50]}
    assert linked <= {chosen[0], None} and chosen[0] in linked and None in linked
    assert {t["organization_id"] for t in tickets[50:]} == {None}


def test_plan_presets() -> None:
    limits = [
        ZendeskSandboxConfig.for_plan(p).plan_limit_per_minute
        for p in ("team", "growth", "enterprise", "enterprise_plus")
    ]
    assert limits == [200, 400, 700, 2500]


@pytest.mark.parametrize(
    ("variant", "content_type", "retry_after"),
    [
        ("plain", "text/plain", True),
        ("json", "application/json", True),
        ("edge", "application/json", True),
        ("plain_bare", "text/plain", False),
    ],
)
def test_account_limit_429_bodies(variant: str, content_type: str, retry_after: bool) -> None:
    with (
        running_sandbox(plan_limit_per_minute=3, rate_limit_body=variant) as sandbox,
        sandbox.api() as api,
    ):
        answers = [api.get("/api/v2/organizations/search", params={"name": "x"}) for _ in "abcd"]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-rate-limit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["ratelimit-limit"] == "3"
    refused = answers[3]
    assert refused.headers["content-type"].startswith(content_type)
    assert ("retry-after" in refused.headers) is retry_after
    if retry_after:
        assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_client_rides_out_the_account_limit() -> None:
    with running_sandbox(plan_limit_per_minute=5, rate_window_s=1.0) as sandbox:
        client = sandbox.client(low_remaining_fraction=0.0)  # no pacing: meet the 429s
        for _ in range(12):
            client.search_organizations(name="nobody")
        stats = sandbox.stats()
        assert stats["rate_limited"].get("account", 0) >= 1
        assert client.retries == stats["rate_limited"]["account"]
        assert stats["requests"]["GET /organizations/search"] == 12 + client.retries
        client.close()


def test_protocol_ticket_writes_are_counted_apart(zendesk: RunningSandbox) -> None:
    with zendesk.scenario() as s:
        ticket = s.post("/_sandbox/tickets", json={"subject": "s"}).json()
        s.patch(f"/_sandbox/tickets/{ticket['id']}", json={"tags": ["x"]}).raise_for_status()
    before = zendesk.stats()
    assert before["writes"]["ticket"] == {}
    assert before["scenario_writes"]["ticket"] == {"create": 1, "update": 1}
    with zendesk.api() as api:
        api.put(f"/api/v2/tickets/{ticket['id']}", json={"ticket": {"priority": "low"}})
        created = api.post(
            "/api/v2/tickets", json={"ticket": {"subject": "by api", "comment": {"body": "b"}}}
        )
        assert created.status_code == 201, created.text
        # Zendesk needs a first comment (or description) to create a ticket.
        refused = api.post("/api/v2/tickets", json={"ticket": {"subject": "no comment"}})
        assert refused.status_code == 422
        assert refused.json()["details"]["description"][0]["error"] == "BlankValue"
    after = zendesk.stats()
    assert after["writes"]["ticket"] == {"update": 1, "create": 1}
    assert after["scenario_writes"]["ticket"] == before["scenario_writes"]["ticket"]


def test_deleted_tickets_leave_the_rest_api(zendesk: RunningSandbox) -> None:
    _seed(zendesk, organizations=2, tickets=5, unassigned_fraction=0.0)
    before = zendesk.sandbox.state.all_tickets()[1]
    with zendesk.scenario() as s:
        s.delete("/_sandbox/tickets/2").raise_for_status()
        assert s.delete("/_sandbox/tickets/2").status_code == 404
    client = zendesk.client()
    assert [t["id"] for t in client.show_many_tickets([1, 2, 3, 99])] == [1, 3]
    assert [t["id"] for t in client.iter_tickets(page_size=2)] == [1, 3, 4, 5]
    with zendesk.api() as api:
        assert api.get("/api/v2/tickets/2.json").status_code == 404
    held = {t["id"]: t for t in zendesk.sandbox.state.all_tickets()}
    assert (held[2]["status"], held[2]["subject"], held[2]["description"]) == (
        "deleted",
        "SCRUBBED",
        "X",
    )
    for kept in ("organization_id", "requester_id", "created_at", "tags"):
        assert held[2][kept] == before[kept], kept
    assert held[2]["generated_timestamp"] >= before["generated_timestamp"]
    client.close()


def test_unique_external_id_is_case_insensitive(zendesk: RunningSandbox) -> None:
    with zendesk.api() as api:
        first = api.post(
            "/api/v2/organizations", json={"organization": {"name": "One", "external_id": "ABC"}}
        )
        second = api.post(
            "/api/v2/organizations", json={"organization": {"name": "Two", "external_id": "abc"}}
        )
        found = api.get("/api/v2/organizations/show_many", params={"external_ids": "aBc"})
    assert first.status_code == 201 and second.status_code == 422
    assert second.json()["details"]["external_id"][0]["error"] == "DuplicateValue"
    assert [o["name"] for o in found.json()["organizations"]] == ["One"]


def test_faults_and_latency_spare_the_scenario_api() -> None:
    with running_sandbox(fault_rate=1.0, fault_kinds=("http_503",), latency_ms=50) as sandbox:
        with sandbox.api() as api:
            started = time.monotonic()
            assert api.get("/api/v2/organizations").status_code == 503
            assert time.monotonic() - started >= 0.05
        assert sandbox.stats()["faults"]["injected"] == {"http_503": 1}
        assert httpx.get(f"{sandbox.url}/_sandbox/organizations").status_code == 200


def test_reset_and_env(zendesk: RunningSandbox) -> None:
    _seed(zendesk, organizations=3, tickets=3)
    with zendesk.scenario() as s:
        s.post("/_sandbox/reset").raise_for_status()
        assert s.get("/_sandbox/organizations").json() == []
        assert s.get("/_sandbox/tickets").json() == []
    assert zendesk.stats()["requests_total"] == 0
    env = sandbox_env(zendesk.url + "/", zendesk.config)
    assert env == {
        "ZENDESK_BASE_URL": zendesk.url,
        "ZENDESK_ALLOW_CUSTOM_BASE_URL": "1",
        "ZENDESK_EMAIL": "sandbox@example.com",
        "ZENDESK_API_TOKEN": "sandbox-api-token",
        "ZENDESK_WEBHOOK_SECRETS": zendesk.config.webhook_secret,
    }


def test_ticket_endpoints_sideload_users_and_groups(zendesk: RunningSandbox) -> None:
    _seed(zendesk, organizations=2, tickets=30, unassigned_fraction=0.0, seed=3)
    held = zendesk.sandbox.state.all_tickets()
    with zendesk.api() as api:
        body = api.get(
            "/api/v2/incremental/tickets/cursor.json",
            params={"start_time": 0, "include": "users,groups"},
        ).json()
        plain = api.get("/api/v2/incremental/tickets/cursor.json", params={"start_time": 0})
    # As Zendesk does: top-level arrays, one record per user or group the tickets name.
    users = {u["id"]: u for u in body["users"]}
    groups = {g["id"]: g for g in body["groups"]}
    assert {t["requester_id"] for t in held} <= set(users)
    assert {t["group_id"] for t in held if t["group_id"]} == set(groups)
    assert None in {t["group_id"] for t in held}  # some tickets have no group yet
    assert all(u["name"] and "@" in u["email"] for u in users.values())
    assert "users" not in plain.json() and "groups" not in plain.json()

    # The client attaches what a ticket record shows, on the export and on show_many.
    client = zendesk.client()
    exported = {
        t["id"]: t for page in client.iter_ticket_export(start_time=0) for t in page.tickets
    }
    shown = {t["id"]: t for t in client.show_many_tickets([t["id"] for t in held])}
    for ticket in held:
        user = users[ticket["requester_id"]]
        for got in (exported[ticket["id"]], shown[ticket["id"]]):
            assert got["requester"] == {"name": user["name"], "email": user["email"]}
            if ticket["group_id"]:
                assert got["group"] == {"name": groups[ticket["group_id"]]["name"]}
            else:
                assert "group" not in got

    # A requester renamed in Zendesk is renamed in the next sideload.
    first = held[0]
    with zendesk.scenario() as s:
        s.patch(
            f"/_sandbox/users/{first['requester_id']}", json={"name": "Renamed Person"}
        ).raise_for_status()
    [again] = client.show_many_tickets([first["id"]])
    assert again["requester"]["name"] == "Renamed Person"
