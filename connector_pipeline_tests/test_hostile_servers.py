"""Both API clients against a real server that misbehaves on purpose (issue 11, section 3):
every case ends in a typed error, promptly, with bounded memory, and nothing is read as an
empty success."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from connector_pipeline import settings
from connector_pipeline.guarded_http import parse_retry_after
from connector_pipeline.intacct import (
    IntacctClient,
    IntacctDeadlineExceeded,
    IntacctResponseError,
    IntacctRetryAfterTooLong,
)
from connector_pipeline.zendesk import (
    ZendeskClient,
    ZendeskDeadlineExceeded,
    ZendeskRateLimited,
    ZendeskRetryAfterTooLong,
    ZendeskUnexpectedResponse,
)
from connector_pipeline.zendesk.ratelimit import parse_rate_limit_headers
from connector_pipeline_tests.hostile import (
    Handler,
    Seen,
    gzip_bomb_chunks,
    gzip_bytes,
    hostile_server,
)

CAP = 4 * 1024 * 1024
GIB = 1024 * 1024 * 1024
JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "text/xml; charset=UTF-8"}
SESSION_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<response><control><status>success</status><senderid>s</senderid><controlid>c</controlid>
<uniqueid>false</uniqueid><dtdversion>3.0</dtdversion></control><operation>
<authentication><status>success</status><userid>u</userid><companyid>c</companyid>
<sessiontimeout>2099-01-01T00:00:00-08:00</sessiontimeout></authentication>
<result><status>success</status><function>getAPISession</function><controlid>%s</controlid>
<data><api><sessionid>sid</sessionid><endpoint>%s</endpoint><locationid></locationid></api>
</data></result></operation></response>"""


def zendesk(url: str, **options: Any) -> ZendeskClient:
    options.setdefault("max_response_bytes", CAP)
    options.setdefault("retry_budget_s", 30.0)
    return ZendeskClient(base_url=url, email="a@example.com", api_token="t", **options)


def intacct(url: str, **options: Any) -> IntacctClient:
    options.setdefault("max_response_bytes", CAP)
    return IntacctClient(
        sender_id="s",
        sender_password="sp",
        company_id="c",
        user_id="u",
        user_password="up",
        endpoint_url=url + "/ia/xml/xmlgw.phtml",
        allow_custom_endpoint=True,
        **options,
    )


def always(status: int, body: bytes, headers: dict[str, str]) -> Callable[[Handler, Seen], None]:
    def script(handler: Handler, _seen: Seen) -> None:
        handler.answer(status, body, headers)

    return script


# --- size cap on decompressed bytes ---------------------------------------------------


def bomb(handler: Handler, _seen: Seen) -> None:
    handler.stream_gzip(200, JSON | XML, gzip_bomb_chunks(GIB))


def test_zendesk_gzip_bomb_is_refused_with_bounded_memory() -> None:
    with hostile_server(bomb) as server, zendesk(server.url) as client:
        tracemalloc.start()
        try:
            with pytest.raises(ZendeskUnexpectedResponse, match="cap"):
                client.show_organization(1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 * CAP  # a 1 GiB inflation never lands in memory
    assert len(server.seen) == 1  # not retried: the same request would get the same bomb


def test_intacct_gzip_bomb_is_refused_with_bounded_memory() -> None:
    with hostile_server(bomb) as server, intacct(server.url) as client:
        tracemalloc.start()
        try:
            with pytest.raises(IntacctResponseError, match="cap"):
                client.query("VENDOR", ["VENDORID"])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 * CAP
    assert len(server.seen) == 1


def test_a_small_gzip_answer_is_still_read() -> None:
    body = gzip_bytes(b'{"organization": {"id": 1, "name": "Acme"}}')
    script = always(200, body, JSON | {"Content-Encoding": "gzip"})
    with hostile_server(script) as server, zendesk(server.url) as client:
        assert client.show_organization(1)["name"] == "Acme"
    assert "gzip" in server.seen[0].headers["Accept-Encoding"]


# --- overall deadline -----------------------------------------------------------------


def trickle_body(handler: Handler, _seen: Seen) -> None:
    handler.trickle(200, JSON | XML, every_s=0.2)


def trickle_headers(handler: Handler, _seen: Seen) -> None:
    handler.trickle_headers(every_s=0.2)


@pytest.mark.parametrize("script", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_zendesk_trickling_server_cannot_outlast_the_deadline(
    script: Callable[[Handler, Seen], None],
) -> None:
    with (
        hostile_server(script) as server,
        zendesk(server.url, timeout_s=5.0, request_deadline_s=1.0, max_attempts=1) as client,
        pytest.raises(ZendeskDeadlineExceeded, match="within 1 s"),
    ):
        client.show_organization(1)


@pytest.mark.parametrize("script", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_intacct_trickling_server_cannot_outlast_the_deadline(
    script: Callable[[Handler, Seen], None],
) -> None:
    with (
        hostile_server(script) as server,
        intacct(server.url, timeout_s=5.0, request_deadline_s=1.0, max_attempts=1) as client,
        pytest.raises(IntacctDeadlineExceeded, match="within 1 s"),
    ):
        client.query("VENDOR", ["VENDORID"])


# --- Retry-After ----------------------------------------------------------------------


def test_retry_after_is_clamped() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("-30") == settings.RETRY_AFTER_MIN_S
    assert parse_retry_after("0") == settings.RETRY_AFTER_MIN_S
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("inf") == float("inf")
    assert parse_retry_after("nan") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    past = format_datetime(now - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, now=now) == settings.RETRY_AFTER_MIN_S
    future = format_datetime(now + timedelta(days=3650), usegmt=True)
    assert (parse_retry_after(future, now=now) or 0) > settings.RETRY_AFTER_MAX_S


def test_zendesk_negative_retry_after_waits_the_minimum() -> None:
    answers = iter([(429, b"{}", {"Retry-After": "-5"}), (200, b'{"organization": {"id": 1}}', {})])

    def script(handler: Handler, _seen: Seen) -> None:
        status, body, headers = next(answers)
        handler.answer(status, body, JSON | headers)

    slept: list[float] = []
    with hostile_server(script) as server, zendesk(server.url, sleep=slept.append) as client:
        assert client.show_organization(1) == {"id": 1}
    assert len(slept) == 1 and slept[0] >= settings.RETRY_AFTER_MIN_S


@pytest.mark.parametrize(
    "value",
    ["999999", "inf", format_datetime(datetime.now(UTC) + timedelta(days=365), usegmt=True)],
    ids=["huge", "inf", "far-future-date"],
)
def test_zendesk_retry_after_beyond_the_cap_is_a_typed_error(value: str) -> None:
    script = always(429, b'{"error": "TooManyRequests"}', JSON | {"Retry-After": value})
    slept: list[float] = []
    with (
        hostile_server(script) as server,
        zendesk(server.url, sleep=slept.append) as client,
        pytest.raises(ZendeskRetryAfterTooLong) as caught,
    ):
        client.show_organization(1)
    assert not caught.value.retryable
    assert isinstance(caught.value, ZendeskRateLimited)
    assert slept == [] and len(server.seen) == 1


def test_intacct_negative_retry_after_waits_the_minimum() -> None:
    answers = iter([429, 302])

    def script(handler: Handler, _seen: Seen) -> None:
        # A 429 asking for -5 s, then an answer that ends the call (a redirect).
        status = next(answers)
        handler.answer(status, b"", {"Retry-After": "-5", "Content-Type": "text/plain"})

    slept: list[float] = []
    with (
        hostile_server(script) as server,
        intacct(server.url, sleep=slept.append) as client,
        pytest.raises(IntacctResponseError, match="HTTP 302"),
    ):
        client.query("VENDOR", ["VENDORID"])
    assert slept == [settings.RETRY_AFTER_MIN_S] and len(server.seen) == 2


@pytest.mark.parametrize("value", ["999999", "inf"])
def test_intacct_retry_after_beyond_the_cap_is_a_typed_error(value: str) -> None:
    script = always(429, b"busy", {"Retry-After": value, "Content-Type": "text/plain"})
    with (
        hostile_server(script) as server,
        intacct(server.url) as client,
        pytest.raises(IntacctRetryAfterTooLong),
    ):
        client.query("VENDOR", ["VENDORID"])
    assert len(server.seen) == 1


# --- rate-limit headers ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999", "lots", "-3"])
def test_garbage_rate_limit_headers_do_not_raise(value: str) -> None:
    headers = {
        "X-Rate-Limit": value,
        "X-Rate-Limit-Remaining": value,
        "ratelimit-reset": value,
        "zendesk-ratelimit-tickets-index": f"total={value}; remaining={value}; resets={value}",
    }
    parse_rate_limit_headers(headers)
    script = always(200, b'{"organization": {"id": 1}}', JSON | headers)
    with hostile_server(script) as server, zendesk(server.url, sleep=lambda _s: None) as client:
        assert client.show_organization(1) == {"id": 1}


# --- redirects and unexpected statuses ------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307])
def test_zendesk_redirect_is_a_typed_error_never_an_empty_success(status: int) -> None:
    script = always(status, b"", {"Location": "https://login.example.com/"})
    with (
        hostile_server(script) as server,
        zendesk(server.url) as client,
        pytest.raises(ZendeskUnexpectedResponse, match="redirect to https://login"),
    ):
        client.search_organizations(external_id="V1")
    assert len(server.seen) == 1  # not followed


def test_intacct_redirect_is_a_typed_error() -> None:
    script = always(302, b"", {"Location": "https://login.example.com/"})
    with (
        hostile_server(script) as server,
        intacct(server.url) as client,
        pytest.raises(IntacctResponseError, match="HTTP 302"),
    ):
        client.query("VENDOR", ["VENDORID"])
    assert len(server.seen) == 1


# --- deeply nested JSON ---------------------------------------------------------------


def test_deeply_nested_json_is_a_typed_error() -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    with (
        hostile_server(always(200, body, JSON)) as server,
        zendesk(server.url) as client,
        pytest.raises(ZendeskUnexpectedResponse, match="nested too deeply"),
    ):
        client.show_organization(1)


def test_deeply_nested_error_body_still_gives_the_status_error() -> None:
    body = b'{"error":' * 100_000 + b"1" + b"}" * 100_000
    with (
        hostile_server(always(422, body, JSON)) as server,
        zendesk(server.url) as client,
        pytest.raises(Exception) as caught,
    ):
        client.show_organization(1)
    assert getattr(caught.value, "status", None) == 422


# --- the session endpoint stays on the configured host --------------------------------


def test_custom_endpoint_session_must_stay_on_the_configured_host() -> None:
    def script(handler: Handler, seen: Seen) -> None:
        control = seen.body.split(b'<function controlid="')[1].split(b'"')[0]
        body = SESSION_XML % (control, b"http://evil.example.com/ia/xml/xmlgw.phtml")
        handler.answer(200, body, XML)

    with (
        hostile_server(script) as server,
        intacct(server.url) as client,
        pytest.raises(IntacctResponseError, match="configured host"),
    ):
        client.query("VENDOR", ["VENDORID"])
    assert len(server.seen) == 1  # nothing, session id included, went to the other host
