"""Every recorded Zendesk body in ../shared/fixtures/zendesk is read into the right outcome:
error bodies through `parse_error`, success bodies through the client, served as recorded
by a real HTTP server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connector_pipeline.zendesk import (
    JobStatus,
    ZendeskAuthError,
    ZendeskInvalid,
    ZendeskNotFound,
    ZendeskRateLimited,
    parse_error,
    parse_export_page,
)
from connector_pipeline.zendesk.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    parse_timestamp,
    verify_signature,
)
from connector_pipeline_tests.support import fixture_bytes
from connector_pipeline_tests.zendesk.conftest import replay_client, replay_server


def _json(name: str) -> dict:
    return dict(json.loads(fixture_bytes("zendesk", name)))


def test_error_400_too_many_values() -> None:
    error = parse_error(400, fixture_bytes("zendesk", "error_400_too_many_values.json"), {})
    assert isinstance(error, ZendeskInvalid)
    assert error.error == "TooManyValues"
    assert "more than 100 values" in (error.description or "")
    assert not error.retryable


def test_error_401_couldnt_authenticate() -> None:
    error = parse_error(401, fixture_bytes("zendesk", "error_401_couldnt_authenticate.json"), {})
    assert isinstance(error, ZendeskAuthError)
    assert error.error == "Couldn't authenticate you"
    assert "ZENDESK_API_TOKEN" in str(error)


def test_error_404_record_not_found() -> None:
    headers = {"X-Zendesk-Request-Id": "abc-123"}
    error = parse_error(404, fixture_bytes("zendesk", "error_404_record_not_found.json"), headers)
    assert isinstance(error, ZendeskNotFound)
    assert (error.error, error.description, error.request_id) == (
        "RecordNotFound",
        "Not found",
        "abc-123",
    )
    assert "abc-123" in str(error)


def test_error_422_duplicate_value() -> None:
    error = parse_error(422, fixture_bytes("zendesk", "error_422_duplicate_value.json"), {})
    assert isinstance(error, ZendeskInvalid)
    assert error.error == "RecordInvalid"
    assert error.details["user_id"][0]["error"] == "DuplicateValue"


def test_error_422_record_invalid() -> None:
    error = parse_error(422, fixture_bytes("zendesk", "error_422_record_invalid.json"), {})
    assert isinstance(error, ZendeskInvalid)
    assert error.details == {"status": [{"description": "Status: closed prevents ticket update"}]}


def test_error_429_incremental_export_rate_limit() -> None:
    body = fixture_bytes("zendesk", "error_429_incremental_export_rate_limit.json")
    error = parse_error(429, body, {"Retry-After": "37"})
    assert isinstance(error, ZendeskRateLimited)
    assert error.retry_after == 37.0
    assert error.error == "APIRateLimitExceeded"
    assert error.retryable


def test_error_429_fixture_surfaces_when_wait_exceeds_budget() -> None:
    body = fixture_bytes("zendesk", "error_429_incremental_export_rate_limit.json")
    with replay_server(lambda m, p, q: (429, body, {"Retry-After": "60"})) as server:
        client = replay_client(server, retry_budget_s=1.0)
        with pytest.raises(ZendeskRateLimited) as caught:
            next(client.iter_ticket_export(start_time=0))
        assert caught.value.retry_after == 60.0
        assert client.http_calls == 1  # no pointless sleep-and-retry inside the budget
        client.close()


def test_organization_create_201() -> None:
    body = fixture_bytes("zendesk", "organization_create_201.json")
    with replay_server(lambda m, p, q: (201, body, {})) as server:
        client = replay_client(server)
        org, created = client.create_or_update_organization({"name": "testOrganizationNone"})
        assert created is True
        assert org["id"] == 6164125400602 and org["id"] > 2**32
        assert org["external_id"] is None and org["organization_fields"] == {}
        assert client.create_organization({"name": "x"})["name"] == "testOrganizationNone"
        client.close()


def test_organizations_list_cursor_page() -> None:
    first = fixture_bytes("zendesk", "organizations_list_cursor_page.json")
    cursor = _json("organizations_list_cursor_page.json")["meta"]["after_cursor"]
    last = json.dumps({"organizations": [], "meta": {"has_more": False}}).encode()
    seen_queries: list[dict[str, str]] = []

    def answer(method: str, path: str, query: dict[str, str]) -> tuple[int, bytes, dict]:
        seen_queries.append(query)
        return 200, (last if "page[after]" in query else first), {}

    with replay_server(answer) as server:
        client = replay_client(server)
        orgs = list(client.iter_organizations(page_size=1))
        client.close()
    assert [o["id"] for o in orgs] == [6130869157658]
    assert seen_queries[1] == {"page[size]": "1", "page[after]": cursor}


def test_organizations_create_many_queued_then_completed() -> None:
    queued = fixture_bytes("zendesk", "organizations_create_many_job_status_queued.json")
    completed = _json("job_status_completed_create_many_organizations.json")["job_status"]
    many = json.dumps({"job_statuses": [completed]}).encode()

    def answer(method: str, path: str, query: dict[str, str]) -> tuple[int, bytes, dict]:
        if path.endswith("create_many.json"):
            return 200, queued, {}
        assert query["ids"] == "V3-62cc0f385b9b9e1abbb66cfafddc77d6"
        return 200, many, {}

    with replay_server(answer) as server:
        client = replay_client(server)
        results = client.create_many_organizations([{"name": f"org {i}"} for i in range(5)])
        client.close()
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert all(r.ok for r in results)
    assert [r.id for r in results] == [
        6716780427418,
        6716780427546,
        6716780427802,
        6716780427674,
        6716780427930,
    ]


def test_job_status_queued() -> None:
    job = JobStatus.from_api(_json("organizations_create_many_job_status_queued.json"))
    assert (job.status, job.total, job.progress, job.job_type) == (
        "queued",
        5,
        None,
        "Bulk Create Organization",
    )
    assert not job.done and job.results == () and job.failures == []


def test_job_status_working() -> None:
    job = JobStatus.from_api(_json("job_status_working.json"))
    assert job.id == "V3-6032b8b01e53ef8fc637cb4881cacd82"
    assert (job.status, job.progress, job.total, job.job_type) == ("working", 31, 100, None)
    assert not job.done


def test_job_status_completed_create_many_organizations() -> None:
    job = JobStatus.from_api(_json("job_status_completed_create_many_organizations.json"))
    assert job.done and job.succeeded
    assert [r.index for r in job.results] == [0, 1, 2, 3, 4]
    assert job.failures == []
    outcome = job.outcome_for([{"name": str(i)} for i in range(5)])
    assert [r.id for r in outcome] == [r.id for r in job.results]


def test_tickets_list_cursor_page() -> None:
    body = fixture_bytes("zendesk", "tickets_list_cursor_page.json")
    last = json.dumps({"tickets": [], "meta": {"has_more": False}}).encode()
    with replay_server(lambda m, p, q: (200, last if "page[after]" in q else body, {})) as server:
        client = replay_client(server)
        tickets = list(client.iter_tickets(page_size=1))
        client.close()
    assert [t["id"] for t in tickets] == [1]
    assert tickets[0]["status"] == "open" and tickets[0]["organization_id"] is None


def test_tickets_incremental_cursor_end_of_stream() -> None:
    body = fixture_bytes("zendesk", "tickets_incremental_cursor_end_of_stream.json")
    with replay_server(lambda m, p, q: (200, body, {})) as server:
        client = replay_client(server)
        pages = list(client.iter_ticket_export(start_time=0))
        client.close()
    assert len(pages) == 1  # end_of_stream stops the export
    page = pages[0]
    assert page.end_of_stream is True
    assert page.after_cursor == "MTcwNzI3MTc0MS4wfHw0MDQ1fA=="  # kept at end of stream
    assert page.received == 87 and len(page.tickets) == 87
    assert page.deleted_ids == [4034]
    deleted = next(t for t in page.tickets if t["id"] == 4034)
    assert (deleted["subject"], deleted["description"]) == ("SCRUBBED", "X")
    assert {t["status"] for t in page.tickets} >= {"new", "open", "pending", "deleted"}


def test_tickets_incremental_cursor_end_time_cuts_the_page() -> None:
    data = _json("tickets_incremental_cursor_end_of_stream.json")
    stamps = sorted(t["generated_timestamp"] for t in data["tickets"])
    end_time = stamps[len(stamps) // 2]
    page = parse_export_page(data, end_time=end_time)
    assert page.passed_end_time
    assert page.tickets and all(t["generated_timestamp"] < end_time for t in page.tickets)
    assert len(page.tickets) == sum(1 for s in stamps if s < end_time)


def test_tickets_incremental_time_based_per_page1() -> None:
    data = _json("tickets_incremental_time_based_per_page1.json")
    page = parse_export_page(data)
    assert len(page.tickets) == 7 and page.end_of_stream is False
    assert {t["generated_timestamp"] for t in page.tickets} == {1695052663}
    # Its end_time is timestamp + 1, so a window ending there keeps every ticket.
    assert len(parse_export_page(data, end_time=data["end_time"]).tickets) == 7
    cut = parse_export_page(data, end_time=1695052663)
    assert cut.tickets == [] and cut.passed_end_time


def test_webhook_invocation_attempts() -> None:
    data = _json("webhook_invocation_attempts.json")
    attempt = data["attempts"][0]
    headers = {h["key"]: h["value"] for h in attempt["request"]["headers"]}
    body = attempt["request"]["payload"].encode()
    payload = json.loads(body)
    assert payload["type"] == "zen:event-type:user.deleted"
    assert payload["detail"]["id"] == "6164069643162"  # ids are strings in detail
    timestamp = headers[TIMESTAMP_HEADER]
    assert parse_timestamp(timestamp) == datetime(2023, 9, 18, 23, 38, 13, tzinfo=UTC)
    # The signing secret was never published: any guess must be rejected as a mismatch,
    # and the 2023 timestamp is stale under the default tolerance.
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature("not-the-secret", body, timestamp, headers[SIGNATURE_HEADER])
    assert caught.value.reason == "mismatch"
    assert attempt["response"]["payload"].startswith("<html>")
    error = parse_error(attempt["status_code"], attempt["response"]["payload"].encode(), {})
    assert isinstance(error, ZendeskAuthError) and "403 Forbidden" in str(error)
