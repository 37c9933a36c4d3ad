"""Sessions: one getAPISession for many calls, renewal before expiry, invalid-session replay,
credential failures and endpoint checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from connector_pipeline.intacct import (
    IntacctAuthError,
    IntacctClient,
    IntacctControlError,
    IntacctResponseError,
    IntacctSessionInvalid,
)
from connector_pipeline.intacct.session import check_endpoint
from connector_pipeline_tests.intacct.conftest import RunningSandbox, SandboxFactory

FIELDS = ["RECORDNO", "VENDORID"]


def test_one_getapisession_for_a_hundred_calls_across_threads(gateway: RunningSandbox) -> None:
    with gateway.client() as client:

        def call(i: int) -> int:
            return len(client.query("VENDOR", FIELDS, page_size=1 + i % 5).records)

        with ThreadPoolExecutor(max_workers=4) as pool:
            sizes = list(pool.map(call, range(100)))
        assert sizes == [1 + i % 5 for i in range(100)]
        by_function = client.calls_by_function()
        assert by_function["getAPISession"] == 1
        assert by_function["readUserFormatting"] == 1
        assert by_function["query"] == 100
        assert client.http_calls == 102
    stats = gateway.get("stats")
    assert stats["sessions_opened"] == 1
    assert stats["rejected_concurrent"] == 0


class Clock:
    """One "now" for the client and the sandbox gateway, moved by the test: a session
    ages without waiting for it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_session_is_renewed_before_expiry_without_a_failed_call(
    start_sandbox: SandboxFactory,
) -> None:
    sandbox = start_sandbox(seed_vendors=3, session_timeout_s=2.0)
    clock = Clock()
    sandbox.sandbox.gateway.clock = clock  # the gateway's own clock seam
    with sandbox.client(session_margin_s=1.0, clock=clock) as client:
        client.query("VENDOR", FIELDS)
        # Sliding timeout: calls inside the window keep the same session.
        client.query("VENDOR", FIELDS)
        assert client.sessions_opened == 1
        clock.advance(1.3)  # within 1 s of the projected timeout: renew first
        client.query("VENDOR", FIELDS)
        assert client.sessions_opened == 2
        clock.advance(2.5)  # past the timeout: the gateway would refuse the old session
        client.query("VENDOR", FIELDS)
        assert client.sessions_opened == 3
    stats = sandbox.get("stats")
    # Every call succeeded the first time: no invalid-session answer was ever produced.
    assert stats["requests"] == client.http_calls
    assert stats["functions"]["query"] == 4


def test_a_session_is_renewed_after_its_maximum_age(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=3, session_timeout_s=3600.0)
    clock = Clock()
    sandbox.sandbox.gateway.clock = clock
    with sandbox.client(session_max_age_s=50 * 60, clock=clock) as client:
        client.query("VENDOR", FIELDS)
        clock.advance(49 * 60)
        client.query("VENDOR", FIELDS)
        assert client.sessions_opened == 1
        clock.advance(2 * 60)  # 51 minutes after issue: a new session, still unexpired
        client.query("VENDOR", FIELDS)
        assert client.sessions_opened == 2


def test_invalid_session_renews_once_and_replays(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        client.query("VENDOR", FIELDS)
        gateway.post("sessions/invalidate")
        page = client.query("VENDOR", FIELDS, page_size=3)
        assert len(page.records) == 3
        assert client.sessions_opened == 2
        by_function = client.calls_by_function()
        assert by_function["query"] == 3  # the refused call, then its replay


def test_forced_invalidation_fault_is_absorbed(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        client.query("VENDOR", FIELDS)
        gateway.post("faults", {"script": ["invalid_session"]})
        assert len(client.query("VENDOR", FIELDS, page_size=2).records) == 2
        assert client.sessions_opened == 2


def test_a_session_that_stays_invalid_is_not_replayed_forever(
    start_sandbox: SandboxFactory,
) -> None:
    sandbox = start_sandbox(seed_vendors=1)
    with sandbox.client(max_attempts=2) as client:
        client.query("VENDOR", FIELDS)
        sandbox.post("faults", {"script": ["invalid_session"] * 10})
        with pytest.raises(IntacctSessionInvalid):
            client.query("VENDOR", FIELDS)
        # Bounded: at most 2 attempts x (call + one replay) after the first good call.
        assert client.calls_by_function()["query"] <= 1 + 2 * 2
        assert client.http_calls <= 12


def test_bad_sender_is_a_control_error_and_not_retried(gateway: RunningSandbox) -> None:
    env = gateway.env() | {"INTACCT_SENDER_PASSWORD": "wrong"}
    with IntacctClient.from_env(env, backoff_base_s=0.01) as client:
        with pytest.raises(IntacctControlError) as info:
            client.query("VENDOR", FIELDS)
        assert "Incorrect Intacct XML Partner ID or password." in str(info.value)
        assert client.http_calls == 1


def test_bad_login_is_an_auth_error_and_not_retried(gateway: RunningSandbox) -> None:
    env = gateway.env() | {"INTACCT_USER_PASSWORD": "wrong"}
    with IntacctClient.from_env(env, backoff_base_s=0.01) as client:
        with pytest.raises(IntacctAuthError) as info:
            client.query("VENDOR", FIELDS)
        assert not isinstance(info.value, IntacctSessionInvalid)
        assert "Sign-in information is incorrect" in str(info.value)
        assert client.http_calls == 1


def test_endpoint_must_be_https_intacct_unless_explicitly_allowed() -> None:
    assert check_endpoint("https://na12.intacct.com/ia/xml/xmlgw.phtml", allow_custom=False)
    for bad in (
        "http://api.intacct.com/ia/xml/xmlgw.phtml",
        "https://intacct.com.evil.example/ia/xml/xmlgw.phtml",
        "https://evilintacct.com/x",
        "http://127.0.0.1:8000/ia/xml/xmlgw.phtml",
    ):
        with pytest.raises(ValueError):
            check_endpoint(bad, allow_custom=False)
    assert check_endpoint("http://127.0.0.1:8000/x", allow_custom=True)


def test_sandbox_endpoint_needs_the_explicit_flag(gateway: RunningSandbox) -> None:
    env = gateway.env()
    env.pop("INTACCT_ALLOW_CUSTOM_ENDPOINT")
    with pytest.raises(ValueError, match="INTACCT_ALLOW_CUSTOM_ENDPOINT"):
        IntacctClient.from_env(env)


def test_returned_endpoint_is_checked_too(start_sandbox: SandboxFactory) -> None:
    """A gateway that answers getAPISession with a foreign endpoint is not followed."""
    sandbox = start_sandbox()
    client = IntacctClient.from_env(sandbox.env(), backoff_base_s=0.01)
    client._allow_custom = False  # the configured URL passed; the returned one must not
    with pytest.raises(IntacctResponseError, match="refusing Intacct endpoint"):
        client.query("VENDOR", FIELDS)
    client.close()


def test_from_env_reports_missing_variables() -> None:
    with pytest.raises(ValueError, match="INTACCT_SENDER_ID"):
        IntacctClient.from_env({})
