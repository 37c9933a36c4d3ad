"""The exception tree and its table-driven classification."""

from __future__ import annotations

import subprocess
import sys

import pytest

from connector_pipeline.intacct import (
    IntacctAuthError,
    IntacctControlError,
    IntacctError,
    IntacctErrorDetail,
    IntacctRateLimited,
    IntacctResultError,
    IntacctSessionInvalid,
    IntacctTransientError,
    IntacctWriteOutcomeUnknown,
)
from connector_pipeline.intacct.errors import (
    IntacctPermissionError,
    IntacctSenderAuthError,
    classify,
    credential_fix,
    error_detail,
)


@pytest.mark.parametrize(
    ("level", "detail", "expected"),
    [
        ("authentication", ("XL03000006", "", "Invalid session q....", ""), IntacctSessionInvalid),
        (
            "authentication",
            ("XL03000006", "", "Sign-in information is incorrect", ""),
            IntacctAuthError,
        ),
        (
            "authentication",
            ("XL03000006", "Invalid Web Services Authorization", "", ""),
            IntacctSenderAuthError,
        ),
        (
            "control",
            ("XL03000006", "", "Incorrect Intacct XML Partner ID or password.", ""),
            IntacctSenderAuthError,
        ),
        (
            "control",
            (
                "XMLGW_JPP0002",
                "Sign-in information is incorrect. Please check your request.",
                "",
                "",
            ),
            IntacctAuthError,
        ),
        (
            "control",
            ("XL03000006", "", "test is not a valid transport policy.", ""),
            IntacctControlError,
        ),
        ("control", ("GW-0010", "", "rate limit", ""), IntacctRateLimited),
        (
            "control",
            ("PL04000055", "", "This company is a demo company and has expired.", ""),
            IntacctControlError,
        ),
        ("result", ("BL34000061", "", "Another Class ... already exists", ""), IntacctResultError),
        ("result", ("XYZ", "", "The Service is Temporarily Off-line", ""), IntacctTransientError),
        ("result", ("XYZ", "", "Something", "Please Try Again Later"), IntacctTransientError),
        ("result", ("XYZ", "", "API rate limit exceeded", ""), IntacctRateLimited),
        (
            "result",
            ("PL04000005", "", "You do not have permission for API", ""),
            IntacctPermissionError,
        ),
    ],
)
def test_classification_table(level: str, detail: tuple[str, ...], expected: type) -> None:
    assert classify(level, [IntacctErrorDetail(*detail)]) is expected


def test_sender_failures_are_both_control_and_auth_errors() -> None:
    assert issubclass(IntacctSenderAuthError, IntacctControlError)
    assert issubclass(IntacctSenderAuthError, IntacctAuthError)
    assert not IntacctSenderAuthError("x").retryable
    sender = credential_fix(IntacctSenderAuthError("x"))
    user = credential_fix(IntacctAuthError("x"))
    assert sender is not None and "INTACCT_SENDER_PASSWORD" in sender
    assert user is not None and "INTACCT_USER_PASSWORD" in user
    assert credential_fix(IntacctSessionInvalid("x")) is None
    assert issubclass(IntacctPermissionError, IntacctResultError)
    assert "INTACCT_USER_ID" in (credential_fix(IntacctPermissionError("x")) or "")
    assert credential_fix(IntacctControlError("x")) is None


def test_retryable_flags() -> None:
    assert IntacctSessionInvalid("x").retryable
    assert IntacctTransientError("x").retryable and IntacctRateLimited("x").retryable
    assert IntacctWriteOutcomeUnknown("x").retryable
    for fatal in (IntacctAuthError, IntacctControlError, IntacctResultError, IntacctError):
        assert not fatal("x").retryable
    assert issubclass(IntacctSessionInvalid, IntacctAuthError)
    assert issubclass(IntacctWriteOutcomeUnknown, IntacctTransientError)


def test_support_id_is_url_decoded_and_message_lists_every_error() -> None:
    detail = error_detail("BL01001973", "", "Bad thing [Support ID: abc%7E123]", "")
    assert detail.description2 == "Bad thing [Support ID: abc~123]"
    exc = IntacctResultError(
        "failed", [detail, IntacctErrorDetail("XL03000009", "", "rolled back")], control_id="fn-1"
    )
    assert "fn-1" in str(exc) and "abc~123" in str(exc) and "rolled back" in str(exc)


def test_client_layer_does_not_import_dagster() -> None:
    code = (
        "import sys, connector_pipeline.intacct, connector_pipeline.sandbox.intacct;"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'dagster'];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


HTTP401_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<response><control><status>failure</status></control>
<errormessage><error><errorno>XMLGW_JPP0002</errorno><description/>
<description2>Sign-in information is incorrect. Please check your request.</description2>
<correction/></error></errormessage></response>"""


def _interpret(status: int, body: bytes, content_type: str, *, write: bool = False) -> object:
    """Classify an answer the way the transport does (real-gateway shapes the sandbox
    does not produce, such as an XML body on HTTP 401)."""
    import httpx

    from connector_pipeline.intacct import IntacctClient
    from connector_pipeline.intacct.client import _Answer

    client = IntacctClient(
        sender_id="s", sender_password="p", company_id="c", user_id="u", user_password="pw"
    )
    try:
        response = _Answer(status, httpx.Headers({"content-type": content_type}), body)
        return client._interpret(response, write=write)
    finally:
        client.close()


def test_xml_body_on_401_is_parsed_like_any_answer() -> None:
    # "Sign-in information is incorrect" at control level: the user's sign-in failed.
    with pytest.raises(IntacctAuthError) as info:
        _interpret(401, HTTP401_XML, "text/xml")
    assert info.value.errors[0].errorno == "XMLGW_JPP0002"
    assert info.value.http_status == 401


@pytest.mark.parametrize(
    ("status", "body", "content_type", "write", "expected"),
    [
        (502, b"<html>cf-error-details</html>", "text/html", False, IntacctTransientError),
        (502, b"<html>cf-error-details</html>", "text/html", True, IntacctWriteOutcomeUnknown),
        (524, b"", "text/plain", True, IntacctWriteOutcomeUnknown),
        (503, b"", "text/plain", True, IntacctTransientError),
        (400, b"GW-0011 Invalid Request", "text/plain", False, IntacctError),
        (200, b"<!DOCTYPE html><html></html>", "text/html", False, IntacctTransientError),
        (
            200,
            b"<response><control><status>succ",
            "application/xml",
            True,
            IntacctWriteOutcomeUnknown,
        ),
    ],
)
def test_http_answers_are_classified(
    status: int, body: bytes, content_type: str, write: bool, expected: type
) -> None:
    with pytest.raises(expected) as info:
        _interpret(status, body, content_type, write=write)
    if status == 503 and write:
        assert not isinstance(info.value, IntacctWriteOutcomeUnknown)
    if status == 400:
        assert isinstance(info.value, IntacctError)
        assert not info.value.retryable
