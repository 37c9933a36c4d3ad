"""No secret reaches a log line or an exception: passwords, session ids, TAXID, bank data."""

from __future__ import annotations

import logging

import pytest

from connector_pipeline.intacct import IntacctAuthError, IntacctClient, IntacctError
from connector_pipeline_tests.intacct.conftest import RunningSandbox


def test_no_secret_in_any_captured_log_line(
    gateway: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.post(
        "vendors",
        {"vendors": [{"VENDORID": "BANK1", "NAME": "Bank", "ACHACCOUNTNUMBER": "000123456789"}]},
    )
    messages: list[str] = []
    sessions: set[str] = set()
    with gateway.client() as client:
        vendors = client.query_all("VENDOR", ["VENDORID", "NAME", "TAXID", "ACHACCOUNTNUMBER"])
        sessions |= set(gateway.sandbox.gateway.sessions)
        gateway.post("sessions/invalidate")
        gateway.post("faults", {"script": ["http_502", "invalid_session"]})
        client.query("VENDOR", ["RECORDNO"])  # a retry and a replay, both logged
        sessions |= set(gateway.sandbox.gateway.sessions)
        client.create("VENDOR", [{"VENDORID": "S1", "NAME": "Secretive", "TAXID": "98-7654321"}])
    env = gateway.env() | {"INTACCT_USER_PASSWORD": "hunter2-user-password"}
    with IntacctClient.from_env(env) as bad, pytest.raises(IntacctAuthError) as info:
        bad.query("VENDOR", ["RECORDNO"])
    messages.append(str(info.value))
    messages.extend(record.getMessage() for record in caplog.records)
    assert any("intacct request" in m for m in messages), "debug bodies were logged"
    secrets = {
        gateway.config.sender_password,
        gateway.config.user_password,
        "hunter2-user-password",
        "98-7654321",
        "000123456789",
        *sessions,
        *(v["TAXID"] for v in vendors if v.get("TAXID")),
    }
    assert len(sessions) >= 2
    leaks = {s for s in secrets for m in messages if s and s in m}
    assert not leaks


def test_exception_text_never_carries_passwords(gateway: RunningSandbox) -> None:
    env = gateway.env() | {"INTACCT_SENDER_PASSWORD": "sender-pw-!"}
    with IntacctClient.from_env(env) as client, pytest.raises(IntacctError) as info:
        client.query("VENDOR", ["RECORDNO"])
    assert "sender-pw-!" not in str(info.value)
    assert "sender-pw-!" not in repr(info.value.args)
