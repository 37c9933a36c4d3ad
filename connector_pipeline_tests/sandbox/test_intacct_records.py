"""Record-level conformance of the Intacct sandbox with the live recordings: the fields it
describes (`lookup`, `inspect`) and the fields and value types of the records it answers
with, checked against lookup_vendor_data_element_live.xml, lookup_apbill_data_element_live
.xml and inspect_customer_detail_live.xml (../shared/fixtures/intacct)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import pytest
from lxml import etree

from connector_pipeline import settings
from connector_pipeline.intacct import functions as fn
from connector_pipeline.intacct import parse_response
from connector_pipeline.intacct.xml import Function, Login, build_request
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig, create_app
from connector_pipeline.sync.vendors import SOURCE_FIELDS
from connector_pipeline_tests.support import fixture_bytes, serve_asgi

Gateway = tuple[str, IntacctSandboxConfig]


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    config = IntacctSandboxConfig(seed_vendors=120, seed_customers=3)
    with serve_asgi(create_app(config)) as server:
        yield server.url + settings.INTACCT_SANDBOX_PATH, config


def ask(gateway: Gateway, *bodies: etree._Element) -> etree._Element:
    """One operation signed in with a login; the parsed `<response>`."""
    url, config = gateway
    request = build_request(
        sender_id=config.sender_id,
        sender_password=config.sender_password,
        control_id="ctl",
        functions=[Function(f"f{i}", body) for i, body in enumerate(bodies)],
        login=Login(config.user_id, config.company_id, config.user_password),
    )
    answer = httpx.post(url, content=request, timeout=30)
    assert answer.status_code == 200
    root = etree.fromstring(answer.content)
    for result in root.iterfind("operation/result"):
        assert result.findtext("status") == "success", etree.tostring(result)
    return root


def recorded(name: str) -> etree._Element:
    return etree.fromstring(fixture_bytes("intacct", name))


def at(el: etree._Element, path: str) -> etree._Element:
    found = el.find(path)
    assert found is not None, path
    return found


def fields_by_id(data: etree._Element) -> dict[str, etree._Element]:
    return {str(f.findtext("ID")): f for f in data.iter("Field")}


def test_vendor_lookup_describes_every_standard_field_as_recorded(gateway: Gateway) -> None:
    live = fields_by_id(recorded("lookup_vendor_data_element_live.xml"))
    ours = fields_by_id(at(ask(gateway, fn.lookup("VENDOR")), "operation/result/data"))
    standard = {k: v for k, v in live.items() if v.findtext("ISCUSTOM") == "false"}
    assert set(ours) == set(standard)
    for name, field in standard.items():
        for tag in ("DATATYPE", "REQUIRED", "READONLY", "ISCUSTOM"):
            assert ours[name].findtext(tag) == field.findtext(tag), (name, tag)
        live_values = [v.text or "" for v in field.iter("VALIDVALUE")]
        our_values = [v.text or "" for v in ours[name].iter("VALIDVALUE")]
        assert not our_values or our_values == live_values, name
        # Same children in the same order (VALIDVALUES only where the sandbox knows them).
        expected = [c.tag for c in field if c.tag != "VALIDVALUES" or our_values]
        assert [c.tag for c in ours[name]] == expected, name


def test_ticket_object_lookup_has_the_recorded_relationship_shape(gateway: Gateway) -> None:
    apbill = recorded("lookup_apbill_data_element_live.xml")
    data = at(ask(gateway, fn.lookup(settings.INTACCT_TICKET_OBJECT)), "operation/result/data")
    live_relationship = next(apbill.iter("Relationship"))
    (ours,) = list(data.iter("Relationship"))
    assert [c.tag for c in ours] == [c.tag for c in live_relationship]
    assert ours.findtext("OBJECTNAME") == "VENDOR"  # upper case, as APBILL's VENDOR link
    assert ours.findtext("RELATIONSHIPTYPE") == "MANY2ONE"
    assert ours.findtext("RELATEDBY") == settings.INTACCT_TICKET_VENDOR_FIELD
    live_field = next(apbill.iter("Field"))
    for field in data.iter("Field"):
        assert [c.tag for c in field] == [c.tag for c in live_field]
    assert data.get("listtype") == apbill.get("listtype") == "All"


def test_customer_inspect_describes_every_recorded_field(gateway: Gateway) -> None:
    live = recorded("inspect_customer_detail_live.xml")
    inspect = etree.Element("inspect", detail="1")
    etree.SubElement(inspect, "object").text = "CUSTOMER"
    data = at(ask(gateway, inspect), "operation/result/data")
    ours = {f.findtext("Name"): f for f in data.iter("Field")}
    live_fields = list(live.iter("Field"))
    for field in live_fields:
        name = field.findtext("Name")
        assert name in ours, name
        assert [c.tag for c in ours[name]] == [c.tag for c in field]
        for tag in ("externalDataName", "isRequired", "isReadOnly"):
            assert ours[name].findtext(tag) == field.findtext(tag), (name, tag)
    assert [c.tag for c in at(data, "Type/Attributes")] == [
        c.tag for c in at(live, ".//Type/Attributes")
    ]


# ----------------------------------------------------------------------------- records

_TIMESTAMP = "%m/%d/%Y %H:%M:%S"  # the sandbox user's default /mdY, 24-hour clock


def _conforms(datatype: str, text: str, allowed: list[str]) -> bool:
    if text == "":
        return True  # an unset field is an empty element, whatever its type
    if allowed:
        return text in allowed
    if datatype == "INTEGER":
        return re.fullmatch(r"-?\d+", text) is not None
    if datatype in {"DECIMAL", "CURRENCY", "PERCENT"}:
        try:
            Decimal(text)
        except InvalidOperation:
            return False
        return True
    if datatype in {"TIMESTAMP", "DATE"}:
        pattern = _TIMESTAMP if datatype == "TIMESTAMP" else _TIMESTAMP.split(" ")[0]
        try:
            datetime.strptime(text, pattern)
        except ValueError:
            return False
        return True
    return True


def _leaves(record: etree._Element, prefix: str = "") -> Iterator[tuple[str, str]]:
    for child in record:
        path = f"{prefix}{child.tag}"
        if len(child):
            yield from _leaves(child, f"{path}.")
        else:
            yield path, child.text or ""


def _check_records(data: etree._Element, tag: str) -> int:
    live = fields_by_id(recorded("lookup_vendor_data_element_live.xml"))
    checked = 0
    for record in data.iterfind(tag):
        for path, text in _leaves(record):
            assert path in live, f"{path}: not a VENDOR field in the live lookup"
            field = live[path]
            allowed = [v.text or "" for v in field.iter("VALIDVALUE")]
            datatype = str(field.findtext("DATATYPE"))
            assert _conforms(datatype, text, allowed), (path, datatype, text)
            checked += 1
    return checked


def test_query_with_the_connectors_fields_answers_recorded_types(gateway: Gateway) -> None:
    fields = list(SOURCE_FIELDS["VENDOR"])
    root = ask(gateway, fn.query("VENDOR", fields, pagesize=200))
    data = at(root, "operation/result/data")
    assert data.get("listtype") == "VENDOR"
    assert _check_records(data, "VENDOR") > 120 * 10


def test_readbyquery_star_and_read_answer_recorded_types(gateway: Gateway) -> None:
    root = ask(
        gateway,
        fn.read_by_query("VENDOR", [], "", 200),
        fn.read("VENDOR", [101, 102, 103], []),
    )
    page, read = root.findall("operation/result/data")
    # Case of listtype and record tags as in readbyquery_and_read_project_live.xml.
    assert (page.get("listtype"), read.get("listtype")) == ("vendor", "VENDOR")
    assert _check_records(page, "vendor") > 120 * 20
    assert _check_records(read, "VENDOR") > 3 * 20
    # `*` answers every standard field, set or not.
    first = at(page, "vendor")
    assert {c.tag for c in first} >= {"PARENTKEY", "VENDORACCOUNTNO", "APACCOUNTTITLE"}


def test_created_records_answer_like_the_recorded_create(gateway: Gateway) -> None:
    live = at(recorded("create_success_multiple_records.xml"), ".//result/data")
    root = ask(gateway, fn.create("VENDOR", [{"VENDORID": "N1", "NAME": "One"}]))
    data = at(root, "operation/result/data")
    assert data.attrib.keys() == live.attrib.keys()
    (record,) = list(data)
    live_record = live[0]
    # <class><RECORDNO/><CLASSID/></class> -> <vendor><RECORDNO/><VENDORID/></vendor>
    assert record.tag == "vendor" and live_record.tag == "class"
    assert [c.tag for c in record] == ["RECORDNO", "VENDORID"]
    assert [c.tag for c in live_record] == ["RECORDNO", "CLASSID"]
    assert re.fullmatch(r"\d+", record.findtext("RECORDNO") or "")
    (result,) = parse_response(etree.tostring(root)).results
    assert result.records[0]["VENDORID"] == "N1"


def test_every_value_type_of_the_connectors_reads_is_typed(gateway: Gateway) -> None:
    """The fields the connector reads all have a lookup type the checks above know."""
    live = fields_by_id(recorded("lookup_vendor_data_element_live.xml"))
    known = {"TEXT", "INTEGER", "DECIMAL", "TIMESTAMP", "BOOLEAN", "DATE", "ENUM", "PERCENT"}
    types: dict[str, Any] = {f: live[f].findtext("DATATYPE") for f in SOURCE_FIELDS["VENDOR"]}
    assert set(types.values()) <= known
