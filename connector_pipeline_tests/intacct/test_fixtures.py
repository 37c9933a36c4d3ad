"""Conformance with the real service: every recorded fixture parses into the right outcome,
and the sandbox's answer to the request behind each fixture has the same structure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lxml import etree

from connector_pipeline.intacct import (
    IntacctAuthError,
    IntacctControlError,
    IntacctError,
    IntacctResultError,
    IntacctSessionInvalid,
    parse_response,
)
from connector_pipeline.intacct import functions as fn
from connector_pipeline.intacct.errors import IntacctSenderAuthError
from connector_pipeline.intacct.xml import Function, Login, build_request
from connector_pipeline_tests.intacct.conftest import RunningSandbox, SandboxFactory
from connector_pipeline_tests.support import fixtures_dir

FIXTURES = [
    "auth_failure_bad_login.xml",
    "auth_failure_invalid_session.xml",
    "control_failure_bad_sender_credentials.xml",
    "control_failure_xml_parse_error.xml",
    "create_failure_multiple_errors.xml",
    "create_success_multiple_records.xml",
    "getapisession_success.xml",
    "inspect_customer_detail_live.xml",
    "legacy_create_returns_key.xml",
    "lookup_apbill_data_element_live.xml",
    "lookup_vendor_data_element_live.xml",
    "readbyquery_and_read_project_live.xml",
    "readbyquery_empty.xml",
    "readbyquery_glaccount_page1.xml",
    "readbyquery_page_with_resultid.xml",
    "readmore_glaccount_last_page.xml",
    "result_aborted_transaction.xml",
]

RAISES: dict[str, tuple[type[Exception], str, int]] = {
    "auth_failure_bad_login.xml": (IntacctAuthError, "Sign-in information is incorrect", 1),
    "auth_failure_invalid_session.xml": (IntacctSessionInvalid, "Invalid session", 1),
    # A kind of IntacctControlError (and of IntacctAuthError): the sender was refused.
    "control_failure_bad_sender_credentials.xml": (
        IntacctSenderAuthError,
        "Incorrect Intacct XML Partner ID or password.",
        1,
    ),
    "control_failure_xml_parse_error.xml": (IntacctControlError, "XML Parse schema error", 2),
}


def _read(name: str) -> bytes:
    return (fixtures_dir("intacct") / name).read_bytes()


def test_every_fixture_file_has_a_case() -> None:
    present = sorted(p.name for p in fixtures_dir("intacct").glob("*.xml"))
    assert present == sorted(FIXTURES)


@pytest.mark.parametrize("name", sorted(RAISES))
def test_failures_raise_the_right_error(name: str) -> None:
    exc_type, text, count = RAISES[name]
    with pytest.raises(exc_type) as info:
        parse_response(_read(name))
    assert type(info.value) is exc_type
    assert isinstance(info.value, IntacctError)
    assert len(info.value.errors) == count
    assert text in info.value.errors[0].description2
    assert info.value.errors[0].errorno.startswith("XL0300000")
    assert info.value.retryable == (exc_type is IntacctSessionInvalid)


def test_bad_login_is_not_the_session_error() -> None:
    with pytest.raises(IntacctAuthError) as info:
        parse_response(_read("auth_failure_bad_login.xml"))
    assert not isinstance(info.value, IntacctSessionInvalid)


def test_getapisession_success() -> None:
    response = parse_response(_read("getapisession_success.xml"))
    (result,) = response.results
    assert result.ok
    assert result.records == [
        {
            "sessionid": "fAkESesSiOnId..",
            "endpoint": "https://unittest.intacct.com/ia/xml/xmlgw.phtml",
            "locationid": "",
        }
    ]
    assert response.authentication is not None
    timeout, stamp = (
        response.authentication.session_timeout,
        response.authentication.session_timestamp,
    )
    assert timeout is not None and stamp is not None
    assert (timeout - stamp).total_seconds() == 24 * 3600
    assert timeout.utcoffset() is not None


def test_readbyquery_page_with_result_id() -> None:
    (result,) = parse_response(_read("readbyquery_page_with_resultid.xml")).results
    assert (result.count, result.total_count, result.num_remaining) == (1, 2, 1)
    assert result.result_id == "myResultId"
    assert result.list_type == "class"
    assert result.records[0]["CLASSID"] == "C1234"
    assert result.records[0]["WHENMODIFIED"] == "07/24/2017 15:19:46"
    assert result.records[0]["DESCRIPTION"] == ""


def test_readbyquery_then_readmore() -> None:
    (first,) = parse_response(_read("readbyquery_glaccount_page1.xml")).results
    (last,) = parse_response(_read("readmore_glaccount_last_page.xml")).results
    assert first.num_remaining == 1 and last.num_remaining == 0
    assert first.result_id == last.result_id
    assert last.function == "readMore"
    assert [first.records[0]["RECORDNO"], last.records[0]["RECORDNO"]] == ["47", "55"]


def test_empty_result() -> None:
    (result,) = parse_response(_read("readbyquery_empty.xml")).results
    assert result.ok and result.records == []
    assert (result.count, result.num_remaining, result.result_id) == (0, 0, "")


def test_create_success_keys() -> None:
    (result,) = parse_response(_read("create_success_multiple_records.xml")).results
    assert result.ok and result.list_type == "objects"
    assert [r["RECORDNO"] for r in result.records] == ["5", "6"]


def test_create_failure_keeps_every_error_and_the_data() -> None:
    (result,) = parse_response(_read("create_failure_multiple_errors.xml")).results
    assert result.status == "failure"
    assert [e.errorno for e in result.errors] == ["BL34000061", "BL01001973", "BL01001973"]
    assert result.errors[0].correction == "Use a unique value instead."
    assert result.records == [{"RECORDNO": "1424", "PROJECTID": "Fellow PD2"}]
    with pytest.raises(IntacctResultError) as info:
        result.raise_for_status()
    assert info.value.control_id == "testFunctionId"
    assert len(info.value.errors) == 3


def test_legacy_key() -> None:
    (result,) = parse_response(_read("legacy_create_returns_key.xml")).results
    assert result.ok and result.key == "C1234" and result.records == []


def test_aborted_result_raises() -> None:
    (result,) = parse_response(_read("result_aborted_transaction.xml")).results
    assert result.status == "aborted"
    assert [e.errorno for e in result.errors] == ["Query Failed", "XL03000009"]
    with pytest.raises(IntacctResultError):
        result.raise_for_status()


# ----------------------------------------------------------------------------- structure


def _paths(el: Any, prefix: str = "") -> set[str]:
    """Element paths with attribute names; record elements under <data> become `*`, and
    their fields are left out (values and object fields differ, the envelope must not)."""
    out: set[str] = set()
    path = f"{prefix}/{el.tag}"
    out.add(path + "".join(f"[@{a}]" for a in sorted(el.attrib)))
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if el.tag == "data" and child.tag != "api":
            out.add(f"{path}/*")
            continue
        out |= _paths(child, path)
    return out


# Elements that only some fixtures carry (older responses lack sessiontimeout, etc.).
OPTIONAL = {
    "/response/operation/authentication/locationid",
    "/response/operation/authentication/sessiontimeout",
    "/response/operation/authentication/sessiontimestamp",
}


def _login_request(sandbox: RunningSandbox, *functions: Any, **overrides: str) -> bytes:
    cfg = sandbox.config
    return build_request(
        sender_id=overrides.get("sender_id", cfg.sender_id),
        sender_password=overrides.get("sender_password", cfg.sender_password),
        control_id="ctl",
        functions=[Function(f"f{i}", body) for i, body in enumerate(functions)],
        login=Login(cfg.user_id, cfg.company_id, overrides.get("user_password", cfg.user_password)),
    )


def _session_id(sandbox: RunningSandbox) -> str:
    body = _login_request(sandbox, fn.get_api_session())
    (result,) = parse_response(sandbox.raw(body).content).results
    return str(result.records[0]["sessionid"])


def _session_request(
    sandbox: RunningSandbox, *functions: Any, session: str | None = None, transaction: bool = False
) -> bytes:
    cfg = sandbox.config
    return build_request(
        sender_id=cfg.sender_id,
        sender_password=cfg.sender_password,
        control_id="ctl",
        functions=[Function(f"f{i}", body) for i, body in enumerate(functions)],
        session_id=session or _session_id(sandbox),
        transaction=transaction,
    )


def _rbq(sandbox: RunningSandbox) -> bytes:
    return _session_request(sandbox, fn.read_by_query("VENDOR", ["RECORDNO", "NAME"], "", 2))


def _readmore(sandbox: RunningSandbox) -> bytes:
    session = _session_id(sandbox)
    first = sandbox.raw(
        _session_request(sandbox, fn.read_by_query("VENDOR", [], "", 2), session=session)
    )
    (result,) = parse_response(first.content).results
    assert result.result_id
    return _session_request(sandbox, fn.read_more(result.result_id), session=session)


def _inspect_customer(sandbox: RunningSandbox) -> bytes:
    inspect = etree.Element("inspect", detail="1")
    etree.SubElement(inspect, "object").text = "CUSTOMER"
    return _session_request(sandbox, inspect)


REQUESTS: dict[str, Callable[[RunningSandbox], bytes]] = {
    "getapisession_success.xml": lambda s: _login_request(s, fn.get_api_session()),
    "auth_failure_bad_login.xml": lambda s: _login_request(
        s, fn.get_api_session(), user_password="wrong"
    ),
    "auth_failure_invalid_session.xml": lambda s: _session_request(
        s, fn.lookup("VENDOR"), session="q-not-a-session"
    ),
    "control_failure_bad_sender_credentials.xml": lambda s: _login_request(
        s, fn.get_api_session(), sender_password="wrong"
    ),
    "control_failure_xml_parse_error.xml": lambda s: b"<request><control><senderid>x</sender>",
    "readbyquery_page_with_resultid.xml": _rbq,
    "readbyquery_glaccount_page1.xml": _rbq,
    "readmore_glaccount_last_page.xml": _readmore,
    "readbyquery_empty.xml": lambda s: _session_request(
        s, fn.read_by_query("VENDOR", [], "VENDORID = 'nope'", 10)
    ),
    "create_success_multiple_records.xml": lambda s: _session_request(
        s,
        fn.create("VENDOR", [{"VENDORID": "N1", "NAME": "One"}, {"VENDORID": "N2", "NAME": "Two"}]),
    ),
    "create_failure_multiple_errors.xml": lambda s: _session_request(
        s,
        fn.create(
            "VENDOR", [{"VENDORID": "V00001", "NAME": "Dup"}, {"VENDORID": "N3", "NAME": "3"}]
        ),
    ),
    "legacy_create_returns_key.xml": lambda s: _session_request(
        s, etree.fromstring(b"<create_class><classid>C1234</classid><name>x</name></create_class>")
    ),
    "result_aborted_transaction.xml": lambda s: _session_request(
        s, fn.read_by_query("VENDOR9", [], "", 10), transaction=True
    ),
    # Second batch (SOURCES.md): the two lookups keep only <data>; the project capture is
    # readByQuery then read in one operation.
    "lookup_vendor_data_element_live.xml": lambda s: _session_request(s, fn.lookup("VENDOR")),
    "lookup_apbill_data_element_live.xml": lambda s: _session_request(
        s, fn.lookup(s.config.ticket_object)
    ),
    "inspect_customer_detail_live.xml": _inspect_customer,
    "readbyquery_and_read_project_live.xml": lambda s: _session_request(
        s,
        fn.read_by_query("VENDOR", ["RECORDNO", "VENDORID", "NAME"], "", 2),
        fn.read("VENDOR", [101, 102], ["RECORDNO", "VENDORID", "NAME"]),
    ),
}


def test_every_fixture_has_a_sandbox_request() -> None:
    assert sorted(REQUESTS) == sorted(FIXTURES)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_sandbox_answer_has_the_fixture_structure(name: str, start_sandbox: SandboxFactory) -> None:
    recorded = etree.fromstring(_read(name))
    expected = _paths(recorded)
    sandbox = start_sandbox(seed_vendors=5, seed_customers=2)
    answer = sandbox.raw(REQUESTS[name](sandbox))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    answered = etree.fromstring(answer.content)
    if recorded.tag == "data":  # recordings that kept only <data> (SOURCES.md, note 1)
        data = answered.find("operation/result/data")
        assert data is not None
        answered = data
    actual = _paths(answered)
    assert expected - OPTIONAL <= actual, sorted(expected - actual)
    assert actual - expected <= OPTIONAL, sorted(actual - expected)


def test_sandbox_getapisession_returns_its_own_endpoint(
    start_sandbox: SandboxFactory,
) -> None:
    sandbox = start_sandbox()
    (result,) = parse_response(
        sandbox.raw(_login_request(sandbox, fn.get_api_session())).content
    ).results
    assert result.function == "getAPISession"
    assert result.records[0]["endpoint"] == sandbox.url + "/ia/xml/xmlgw.phtml"
