"""Text is copied exactly (DESIGN.md decision 11): a vendor name read from an Intacct
response reaches Zendesk as it was, and a ticket subject read from Zendesk reaches
Intacct as it was; only characters XML 1.0 cannot carry are removed, never replaced."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from connector_pipeline.intacct import functions, parse_response, sanitize_xml_text
from connector_pipeline.intacct.xml import Function, build_request, safe_fromstring, sub
from connector_pipeline.settings import DEFAULT_MAPPING_FILE
from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.sync.tickets import map_ticket
from connector_pipeline.sync.vendors import map_vendor, stage_row

# Names and subjects as people type them, plus the characters that used to be lost: runs
# of spaces, tabs, no-break spaces, line breaks, C0 controls, surrogates, U+FFFE/U+FFFF.
AWKWARD = st.sampled_from(
    [
        *(" ", "  ", "\t", "\u00a0", "\u202f", "\n", "\r", "\r\n", "\x00", "\x01", "\x0b"),
        *("\x1f", "\x7f", "\x85", "\ud800", "\ufffe", "\uffff", "&", "<", "]]>", "é", "🙂"),
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=8), AWKWARD), max_size=12).map("".join)

MAPPING = ConnectorMapping.from_yaml(DEFAULT_MAPPING_FILE.read_text())


def intacct_response(record: dict[str, str]) -> bytes:
    """What the gateway returns for a one-vendor query, built with lxml as Intacct's
    serializer would escape it."""
    root = etree.Element("response")
    control = sub(root, "control")
    sub(control, "status", "success")
    operation = sub(root, "operation")
    auth = sub(operation, "authentication")
    sub(auth, "status", "success")
    result = sub(operation, "result")
    sub(result, "status", "success")
    sub(result, "function", "query")
    sub(result, "controlid", "q1")
    data = sub(result, "data")
    for key, value in {"count": "1", "totalcount": "1", "numremaining": "0"}.items():
        data.set(key, value)
    vendor = sub(data, "VENDOR")
    for field, value in record.items():
        sub(vendor, field, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@settings(max_examples=300, deadline=None)
@given(name=TEXT.filter(lambda n: sanitize_xml_text(n).strip()))
def test_a_vendor_name_reaches_zendesk_exactly(name: str) -> None:
    body = intacct_response({"RECORDNO": "7", "VENDORID": "V-7", "NAME": name, "STATUS": "active"})
    record = parse_response(body).results[0].records[0]
    organization = map_vendor(dict(stage_row("VENDOR", record)), MAPPING.organization)
    sent = json.loads(json.dumps({"organization": organization.payload}))  # Zendesk's JSON
    assert sent["organization"]["name"] == sanitize_xml_text(name)


@settings(max_examples=300, deadline=None)
@given(subject=TEXT)
def test_a_ticket_subject_reaches_intacct_exactly(subject: str) -> None:
    ticket: dict[str, Any] = json.loads(
        json.dumps({"id": 41, "subject": subject, "status": "open", "organization_id": 9})
    )
    record = map_ticket(ticket, vendor_record_no=7, mapping=MAPPING.ticket_record)
    body = build_request(
        sender_id="s",
        sender_password="p",
        control_id="c",
        session_id="session",
        functions=[Function("w1", functions.create("zendesk_ticket", [record]))],
    )
    sent = safe_fromstring(body).find(".//create/zendesk_ticket/subject")
    assert (sent.text or "") == sanitize_xml_text(subject)


def test_spaces_tabs_and_no_break_spaces_are_kept_and_controls_removed() -> None:
    name = "Acme\u00a0 Supplies\tLtd  \x01(EU)\x0b"
    body = intacct_response({"RECORDNO": "1", "VENDORID": "A", "NAME": name})
    record = parse_response(body).results[0].records[0]
    organization = map_vendor(dict(stage_row("VENDOR", record)), MAPPING.organization)
    assert organization.payload["name"] == "Acme\u00a0 Supplies\tLtd  (EU)"
