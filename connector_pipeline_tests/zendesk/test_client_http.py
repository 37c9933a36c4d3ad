"""The request choke point against the sandbox: retries, waits, budgets, error mapping,
rate-limit headers and pacing."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from connector_pipeline.zendesk import (
    ZendeskAuthError,
    ZendeskClient,
    ZendeskInvalid,
    ZendeskNotFound,
    ZendeskRateLimited,
    ZendeskServerError,
    ZendeskTransportError,
    parse_error,
)
from connector_pipeline.zendesk.errors import is_duplicate_value
from connector_pipeline.zendesk.ratelimit import parse_rate_limit_headers, parse_structured
from connector_pipeline_tests.support import free_port
from connector_pipeline_tests.zendesk.conftest import (
    FAST_CLIENT,
    RunningSandbox,
    replay_client,
    replay_server,
    running_sandbox,
)


def _script(sandbox: RunningSandbox, *kinds: str) -> None:
    with sandbox.scenario() as s:
        s.post("/_sandbox/faults", json={"script": list(kinds)}).raise_for_status()


def test_retry_after_is_honoured(zendesk: RunningSandbox) -> None:
    client = zendesk.client()
    _script(zendesk, "rate_limit_json")  # Retry-After: 1
    started = time.monotonic()
    assert client.show_many_organizations(ids=[1]) == []
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0
    assert (client.http_calls, client.retries) == (2, 1)
    client.close()


def test_default_wait_when_retry_after_is_missing(zendesk: RunningSandbox) -> None:
    client = zendesk.client(default_retry_after_s=0.8, backoff_initial_s=0.01)
    _script(zendesk, "rate_limit_no_retry_after")
    started = time.monotonic()
    client.show_many_organizations(ids=[1])
    assert time.monotonic() - started >= 0.8  # the default, not the 10 ms backoff
    assert client.http_calls == 2
    client.close()


def test_plain_text_429_is_handled(zendesk: RunningSandbox) -> None:
    client = zendesk.client()
    _script(zendesk, "rate_limit_plain")
    assert client.search_organizations(external_id="nothing") == []
    assert client.retries == 1
    error = parse_error(429, b"Number of allowed API requests per minute exceeded", {})
    assert isinstance(error, ZendeskRateLimited)
    assert error.retry_after is None
    assert error.description == "Number of allowed API requests per minute exceeded"
    client.close()


def test_rate_limited_raised_when_wait_exceeds_budget(zendesk: RunningSandbox) -> None:
    client = zendesk.client(retry_budget_s=0.5)
    _script(zendesk, "rate_limit_plain")
    with pytest.raises(ZendeskRateLimited) as caught:
        client.show_many_organizations(ids=[1])
    assert caught.value.retry_after == 1.0
    assert caught.value.status == 429
    assert client.http_calls == 1
    client.close()


def test_transient_failures_are_retried(zendesk: RunningSandbox) -> None:
    client = zendesk.client()
    _script(zendesk, "http_500", "http_502", "reset", "html", "conflict", "http_503")
    org = client.create_organization({"name": "survivor", "external_id": "S-1"})
    assert org["name"] == "survivor"
    assert client.retries == 6 and client.http_calls == 7
    stats = zendesk.stats()
    assert stats["requests"]["POST /organizations"] == 7
    assert stats["writes"]["organization"] == {"create": 1}
    client.close()


def test_transient_failures_beyond_the_budget_surface(zendesk: RunningSandbox) -> None:
    client = zendesk.client(max_attempts=3)
    _script(zendesk, "http_502", "http_502", "http_502", "http_502")
    with pytest.raises(ZendeskServerError) as caught:
        client.show_many_organizations(ids=[1])
    assert caught.value.status == 502 and caught.value.retryable
    assert client.http_calls == 3
    client.close()


def test_connection_refused_is_a_transport_error() -> None:
    client = ZendeskClient(
        base_url=f"http://127.0.0.1:{free_port()}",
        email="a@example.com",
        api_token="t",
        **{**FAST_CLIENT, "retry_budget_s": 1.0},
    )
    with pytest.raises(ZendeskTransportError):
        client.show_many_organizations(ids=[1])
    assert client.http_calls >= 2
    client.close()


def test_bad_credentials_are_an_auth_error_without_retry(zendesk: RunningSandbox) -> None:
    env = {**zendesk.env, "ZENDESK_API_TOKEN": "wrong"}
    client = ZendeskClient.from_env(env, **FAST_CLIENT)
    with pytest.raises(ZendeskAuthError) as caught:
        client.show_many_organizations(ids=[1])
    assert caught.value.status == 401 and "ZENDESK_API_TOKEN" in str(caught.value)
    assert client.http_calls == 1
    client.close()


def test_incremental_export_needs_an_admin(zendesk: RunningSandbox) -> None:
    client = ZendeskClient(
        base_url=zendesk.url,
        email=zendesk.config.agent_email,
        api_token=zendesk.config.agent_api_token,
        **FAST_CLIENT,
    )
    assert client.show_many_organizations(ids=[1]) == []  # the agent is authenticated
    with pytest.raises(ZendeskAuthError) as caught:
        next(client.iter_ticket_export(start_time=0))
    assert caught.value.status == 403
    assert "admin" in str(caught.value) and "incremental" in str(caught.value)
    client.close()


def test_not_found_and_invalid(zendesk: RunningSandbox) -> None:
    client = zendesk.client()
    with pytest.raises(ZendeskNotFound):
        client.show_organization(42)
    client.create_organization({"name": "Acme Corp"})
    with pytest.raises(ZendeskInvalid) as caught:
        client.create_organization({"name": "  Acme Corp  "})  # trimmed before validation
    assert is_duplicate_value(caught.value.details, "name")
    assert client.retries == 0
    client.close()


def test_from_env_requires_a_target_and_credentials() -> None:
    with pytest.raises(ValueError, match="set ZENDESK_SUBDOMAIN"):
        ZendeskClient.from_env({"ZENDESK_API_TOKEN": "x", "ZENDESK_EMAIL": "e"})
    with pytest.raises(ValueError, match="oauth_token"):
        ZendeskClient.from_env({"ZENDESK_SUBDOMAIN": "acme"})
    client = ZendeskClient.from_env({"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_OAUTH_TOKEN": "tok"})
    assert client.base_url == "https://acme.zendesk.com"
    client.close()


@pytest.mark.parametrize(
    "subdomain", ["acme.zendesk.com", "https://acme", "ac me", "-acme", "a/b", "x" * 64, "é"]
)
def test_subdomain_must_be_a_bare_subdomain(subdomain: str) -> None:
    env = {"ZENDESK_SUBDOMAIN": subdomain, "ZENDESK_OAUTH_TOKEN": "tok"}
    with pytest.raises(ValueError, match=r"ZENDESK_SUBDOMAIN=.* is not a Zendesk subdomain"):
        ZendeskClient.from_env(env)


def test_base_url_must_be_https_unless_the_sandbox_flag_is_set() -> None:
    env = {"ZENDESK_BASE_URL": "http://zendesk.example.com", "ZENDESK_OAUTH_TOKEN": "tok"}
    with pytest.raises(ValueError, match="ZENDESK_BASE_URL must be https"):
        ZendeskClient.from_env(env)
    with pytest.raises(ValueError, match="not an absolute"):
        ZendeskClient.from_env({**env, "ZENDESK_BASE_URL": "zendesk.example.com"})
    with ZendeskClient.from_env({**env, "ZENDESK_ALLOW_CUSTOM_BASE_URL": "1"}) as client:
        assert client.base_url == "http://zendesk.example.com"
    https = {**env, "ZENDESK_BASE_URL": "https://support.example.com/api/v2/"}
    with ZendeskClient.from_env(https) as client:
        assert client.base_url == "https://support.example.com"


def test_error_envelopes_seen_in_the_wild() -> None:
    errors_list = parse_error(
        429,
        b'{"errors":[{"code":"TooManyRequests","title":"Too many requests to update"}]}',
        {"Retry-After": "5"},
    )
    assert (errors_list.error, errors_list.description, errors_list.retry_after) == (
        "TooManyRequests",
        "Too many requests to update",
        5.0,
    )
    edge = parse_error(
        429,
        b'{"detail":"Rate limited by Zendesk edge protection","status":"429",'
        b'"title":"Automated response"}',
        {},
    )
    assert isinstance(edge, ZendeskRateLimited)
    assert edge.description == "Rate limited by Zendesk edge protection"
    nested = parse_error(
        403, b'{"error":{"title":"Forbidden","message":"You do not have access"}}', {}
    )
    assert (nested.error, nested.description) == ("Forbidden", "You do not have access")
    html = parse_error(502, b"<html><head><title>502 Bad Gateway</title></head></html>", {})
    assert isinstance(html, ZendeskServerError) and html.description == "502 Bad Gateway"
    too_many_jobs = parse_error(
        429, b'{"error":"TooManyJobs","description":"Too many jobs","current_job_ids":[]}', {}
    )
    assert type(too_many_jobs).__name__ == "ZendeskTooManyJobs"
    empty = parse_error(500, b"", {})
    assert isinstance(empty, ZendeskServerError) and empty.retryable
    legacy = parse_error(
        422,
        b'{"error":"RecordInvalid","details":{"name":[{"description":"taken","type":"taken"}]}}',
        {},
    )
    assert is_duplicate_value(legacy.details, "name")


def test_rate_limit_headers_in_every_spelling() -> None:
    assert parse_rate_limit_headers({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "5"}) == (
        parse_rate_limit_headers({"x-rate-limit": "700", "x-rate-limit-remaining": "5"})
    )
    info = parse_rate_limit_headers(
        {"ratelimit-limit": "400", "ratelimit-remaining": "390", "ratelimit-reset": "12"}
    )
    assert info is not None and (info.limit, info.remaining, info.reset_s) == (400, 390, 12.0)
    old = parse_rate_limit_headers({"rate-limit": "200", "rate-limit-remaining": "7"})
    assert old is not None and (old.limit, old.remaining) == (200, 7)
    tightest = parse_rate_limit_headers(
        {
            "x-rate-limit": "700",
            "x-rate-limit-remaining": "650",
            "zendesk-ratelimit-tickets-index": "total=100; remaining=3; resets=41",
        }
    )
    assert tightest is not None
    assert (tightest.name, tightest.limit, tightest.remaining, tightest.reset_s) == (
        "zendesk-ratelimit-tickets-index",
        100,
        3,
        41.0,
    )
    assert parse_structured("total=30; remaining=29; resets=60") == {
        "total": 30.0,
        "remaining": 29.0,
        "resets": 60.0,
    }
    assert parse_rate_limit_headers({"content-type": "application/json"}) is None


def test_low_remaining_budget_slows_the_client_down() -> None:
    with running_sandbox(plan_limit_per_minute=20, rate_window_s=2.0) as sandbox:
        client = sandbox.client(low_remaining_fraction=0.5)
        for _ in range(30):
            client.show_many_organizations(ids=[1])
        stats = sandbox.stats()
        assert client.paced_s > 0
        assert stats["rate_limited"] == {}  # paced, never refused
        assert stats["requests"]["GET /organizations/show_many"] == 30
        client.close()


def test_counters_are_thread_safe(zendesk: RunningSandbox) -> None:
    client = zendesk.client()

    def work() -> None:
        for _ in range(10):
            client.search_organizations(name="nobody")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert client.http_calls == 60
    assert client.calls_by_endpoint() == {"GET /organizations/search": 60}
    assert zendesk.stats()["requests"]["GET /organizations/search"] == 60
    client.close()


def test_json_suffix_is_optional(zendesk: RunningSandbox) -> None:
    with zendesk.api() as api:
        created = api.post("/api/v2/organizations", json={"organization": {"name": "No Suffix"}})
        org_id = created.json()["organization"]["id"]
        with_suffix = api.get(f"/api/v2/organizations/{org_id}.json").json()
        without = api.get(f"/api/v2/organizations/{org_id}").json()
    assert created.status_code == 201 and with_suffix == without
    assert httpx.get(f"{zendesk.url}/api/v2/organizations").status_code == 401


def test_a_2xx_maintenance_page_is_retried() -> None:
    answers: list[tuple[int, bytes, dict[str, str]]] = [
        (200, b"<html><title>Maintenance</title></html>", {}),
        (200, b'{"organizations": [{"id": 7}]}', {}),
    ]
    with replay_server(lambda m, p, q: answers.pop(0)) as server:
        client = replay_client(server)
        assert client.show_many_organizations(ids=[7]) == [{"id": 7}]
        assert (client.http_calls, client.retries) == (2, 1)
        client.close()
