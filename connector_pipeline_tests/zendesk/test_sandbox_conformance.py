"""The sandbox answers the request behind each recorded fixture with the same JSON
structure: the same key paths with the same value types (values aside; null matches any
type, since a field null in one recording is set in another)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from connector_pipeline_tests.support import fixture_bytes, serve_asgi
from connector_pipeline_tests.zendesk.conftest import RunningSandbox, running_sandbox

Shape = dict[str, set[str]]


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape(value: Any, wildcard: tuple[str, ...] = ()) -> Shape:
    """Key path -> value types. Keys of objects at a path in `wildcard` become `*`."""
    found: Shape = defaultdict(set)

    def walk(node: Any, path: str) -> None:
        found[path].add(_type(node))
        if isinstance(node, dict):
            for key, child in node.items():
                name = "*" if path in wildcard else key
                walk(child, f"{path}.{name}")
        elif isinstance(node, list):
            for child in node:
                walk(child, f"{path}[]")

    walk(value, "$")
    return dict(found)


def assert_same_shape(
    recorded: Any,
    answered: Any,
    *,
    wildcard: tuple[str, ...] = (),
    sandbox_extra: frozenset[str] = frozenset(),
) -> None:
    want, got = shape(recorded, wildcard), shape(answered, wildcard)
    assert set(want) - set(got) == set(), "paths the sandbox does not produce"
    extra = {p for p in set(got) - set(want) - sandbox_extra if not _inside_empty_list(p, want)}
    assert extra == set(), "paths the real service did not send"
    for path, types in want.items():
        real, ours = types - {"null"}, got[path] - {"null"}
        if real and ours:
            assert real == ours, f"{path}: recorded {real}, sandbox {ours}"


def _inside_empty_list(path: str, recorded: Shape) -> bool:
    """Items of a list that was empty in every recorded instance (e.g. `tags: []`) have no
    recorded shape to compare with."""
    cut = path.find("[]")
    while cut != -1:
        if path[:cut] in recorded and path[: cut + 2] not in recorded:
            return True
        cut = path.find("[]", cut + 2)
    return False


def _fixture(name: str) -> Any:
    return json.loads(fixture_bytes("zendesk", name))


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    fixture_bytes("zendesk", "SOURCES.md")  # skip (or fail in CI) without fixtures
    with running_sandbox(job_delay_s=2.0) as running:
        yield running


def _seed(sandbox: RunningSandbox, **body: Any) -> dict[str, Any]:
    with sandbox.scenario() as s:
        return dict(s.post("/_sandbox/seed", json=body).raise_for_status().json())


def test_organization_create_201(sandbox: RunningSandbox) -> None:
    with sandbox.api() as api:
        response = api.post(
            "/api/v2/organizations.json", json={"organization": {"name": "testOrganizationNone"}}
        )
    assert response.status_code == 201
    assert response.headers["location"].endswith(".json")
    assert_same_shape(_fixture("organization_create_201.json"), response.json())


def test_organizations_list_cursor_page(sandbox: RunningSandbox) -> None:
    _seed(sandbox, organizations=3)
    with sandbox.api() as api:
        response = api.get("/api/v2/organizations.json", params={"page[size]": 1})
    assert response.status_code == 200
    assert response.json()["meta"]["has_more"] is True
    assert_same_shape(_fixture("organizations_list_cursor_page.json"), response.json())


def test_create_many_queued_working_completed(sandbox: RunningSandbox) -> None:
    orgs = [{"name": f"conformance {i}"} for i in range(5)]
    with sandbox.api() as api:
        queued = api.post("/api/v2/organizations/create_many.json", json={"organizations": orgs})
        job_id = queued.json()["job_status"]["id"]
        assert queued.json()["job_status"]["status"] == "queued"
        assert_same_shape(
            _fixture("organizations_create_many_job_status_queued.json"), queued.json()
        )
        time.sleep(0.8)  # "working" from 30 % of the delay until it completes
        working = api.get(f"/api/v2/job_statuses/{job_id}.json").json()
        assert working["job_status"]["status"] == "working"
        # job_type appears in 2024 recordings only: the sandbox sends it, as Zendesk does now.
        assert_same_shape(
            _fixture("job_status_working.json"),
            working,
            sandbox_extra=frozenset({"$.job_status.job_type"}),
        )
        deadline = time.monotonic() + 10
        while True:
            completed = api.get(f"/api/v2/job_statuses/{job_id}").json()
            if completed["job_status"]["status"] == "completed" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert completed["job_status"]["status"] == "completed"
    assert_same_shape(_fixture("job_status_completed_create_many_organizations.json"), completed)


def test_tickets_list_cursor_page(sandbox: RunningSandbox) -> None:
    _seed(sandbox, organizations=2, tickets=5)
    with sandbox.api() as api:
        response = api.get("/api/v2/tickets.json", params={"page[size]": 1})
    assert_same_shape(_fixture("tickets_list_cursor_page.json"), response.json())


def test_tickets_incremental_cursor_end_of_stream(sandbox: RunningSandbox) -> None:
    seeded = _seed(sandbox, organizations=2, tickets=20)
    with sandbox.scenario() as s:
        s.delete(f"/_sandbox/tickets/{seeded['ticket_ids'][3]}").raise_for_status()
    with sandbox.api() as api:
        response = api.get("/api/v2/incremental/tickets/cursor.json", params={"start_time": 0})
    body = response.json()
    assert body["end_of_stream"] is True and body["after_cursor"]
    deleted = [t for t in body["tickets"] if t["status"] == "deleted"]
    assert [(t["subject"], t["description"]) for t in deleted] == [("SCRUBBED", "X")]
    assert_same_shape(_fixture("tickets_incremental_cursor_end_of_stream.json"), body)


def test_tickets_incremental_time_based_per_page1(sandbox: RunningSandbox) -> None:
    _seed(sandbox, organizations=2, tickets=10)
    with sandbox.api() as api:
        response = api.get(
            "/api/v2/incremental/tickets.json", params={"per_page": 1, "start_time": 0}
        )
    body = response.json()
    assert body["end_time"] == body["tickets"][-1]["generated_timestamp"] + 1
    assert_same_shape(_fixture("tickets_incremental_time_based_per_page1.json"), body)


def test_error_400_too_many_values(sandbox: RunningSandbox) -> None:
    orgs = [{"name": f"o{i}"} for i in range(101)]
    with sandbox.api() as api:
        response = api.post("/api/v2/organizations/create_many.json", json={"organizations": orgs})
    assert response.status_code == 400
    assert response.content == fixture_bytes("zendesk", "error_400_too_many_values.json")


def test_error_401_couldnt_authenticate(sandbox: RunningSandbox) -> None:
    response = httpx.get(f"{sandbox.url}/api/v2/tickets/1.json", auth=("x/token", "wrong"))
    assert response.status_code == 401
    assert response.json() == _fixture("error_401_couldnt_authenticate.json")


def test_error_404_record_not_found(sandbox: RunningSandbox) -> None:
    with sandbox.api() as api:
        response = api.put(
            "/api/v2/organizations/9223372036854775807.json", json={"organization": {}}
        )
    assert response.status_code == 404
    assert response.json() == _fixture("error_404_record_not_found.json")


def test_error_422_duplicate_value(sandbox: RunningSandbox) -> None:
    with sandbox.api() as api:
        api.post("/api/v2/organizations.json", json={"organization": {"name": "Acme"}})
        response = api.post("/api/v2/organizations.json", json={"organization": {"name": "Acme "}})
    assert response.status_code == 422
    body = response.json()
    assert body["details"]["name"][0]["error"] == "DuplicateValue"
    # The recording is a DuplicateValue on another field: compare with field names aside.
    assert_same_shape(_fixture("error_422_duplicate_value.json"), body, wildcard=("$.details",))


def test_error_422_record_invalid(sandbox: RunningSandbox) -> None:
    with sandbox.scenario() as s:
        ticket = s.post("/_sandbox/tickets", json={"subject": "x", "status": "closed"}).json()
    with sandbox.api() as api:
        response = api.put(
            f"/api/v2/tickets/{ticket['id']}.json", json={"ticket": {"status": "open"}}
        )
    assert response.status_code == 422
    assert response.json() == _fixture("error_422_record_invalid.json")


def test_error_429_incremental_export_rate_limit() -> None:
    fixture_bytes("zendesk", "SOURCES.md")
    with running_sandbox(incremental_limit_per_minute=1) as sandbox, sandbox.api() as api:
        first = api.get("/api/v2/incremental/tickets/cursor.json", params={"start_time": 0})
        second = api.get("/api/v2/incremental/tickets/cursor.json", params={"start_time": 0})
    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert second.json() == _fixture("error_429_incremental_export_rate_limit.json")


def test_webhook_invocation_attempts() -> None:
    fixture_bytes("zendesk", "SOURCES.md")
    page = (
        b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>"
        b"403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    target = FastAPI()

    @target.post("/hook")
    def refuse() -> Response:
        return Response(page, status_code=403, media_type="text/html")

    with (
        serve_asgi(target) as receiver,
        running_sandbox(webhook_url=f"{receiver.url}/hook", webhook_max_attempts=2) as sandbox,
    ):
        with sandbox.scenario() as s:
            s.post("/_sandbox/tickets", json={"subject": "hello"}).raise_for_status()
        assert sandbox.sandbox.webhooks.wait_idle(20)
        invocation = sandbox.sandbox.webhooks.invocations()[0]["id"]
        webhook_id = sandbox.config.webhook_id
        with sandbox.api() as api:
            response = api.get(f"/api/v2/webhooks/{webhook_id}/invocations/{invocation}/attempts")
    body = response.json()
    assert body["attempts"][0]["status"] == "terminated"
    assert body["attempts"][0]["status_code"] == 403
    assert_same_shape(_fixture("webhook_invocation_attempts.json"), body)
