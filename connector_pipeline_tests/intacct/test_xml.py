"""Request building, text sanitising, the hardened parser and log redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from connector_pipeline.intacct import (
    IntacctMalformedResponse,
    IntacctResponseError,
    parse_response,
    sanitize_xml_text,
)
from connector_pipeline.intacct import functions as fn
from connector_pipeline.intacct.filters import and_, eq, from_element, gt, in_, or_, to_element
from connector_pipeline.intacct.xml import Function, Login, build_request, redact_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<response><control><status>&lol4;</status></control></response>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><control><status>success</status><senderid>&xxe;</senderid></control></response>"""


def _valid_xml_char(c: str) -> bool:
    o = ord(c)
    return (
        o in (0x9, 0xA, 0xD)
        or 0x20 <= o <= 0xD7FF
        or 0xE000 <= o <= 0xFFFD
        or 0x10000 <= o <= 0x10FFFF
    )


@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)))
def test_sanitized_text_is_accepted_by_lxml_and_keeps_every_valid_character(text: str) -> None:
    clean = sanitize_xml_text(text)
    assert clean == "".join(c for c in text if _valid_xml_char(c))
    el = etree.Element("x")
    el.text = clean  # raises ValueError on anything XML 1.0 forbids
    assert (etree.fromstring(etree.tostring(el)).text or "") == clean


def test_control_characters_and_surrogates_are_removed() -> None:
    assert sanitize_xml_text("a\x00b\x01c\x0bd\x1fe\ufffef\uffffg\ud800h\tz\n") == "abcdefgh\tz\n"


def test_request_envelope_has_documented_shape() -> None:
    body = build_request(
        sender_id="s",
        sender_password="sp",
        control_id="c1",
        functions=[Function("f1", fn.read_more("R<&>"))],
        session_id="sess",
    )
    root = etree.fromstring(body)
    assert [c.tag for c in _found(root, "control")] == [
        "senderid",
        "password",
        "controlid",
        "uniqueid",
        "dtdversion",
        "includewhitespace",
    ]
    assert root.findtext("control/dtdversion") == "3.0"
    assert root.findtext("control/includewhitespace") == "false"
    assert _found(root, "operation").get("transaction") == "false"
    assert root.findtext("operation/authentication/sessionid") == "sess"
    function = _found(root, "operation/content/function")
    assert function.get("controlid") == "f1"
    assert function.findtext("readMore/resultId") == "R<&>"
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_login_request_and_exactly_one_authentication() -> None:
    body = build_request(
        sender_id="s",
        sender_password="sp",
        control_id="c",
        functions=[Function("f", fn.get_api_session("East"))],
        login=Login("u", "co", "pw", "East"),
    )
    root = etree.fromstring(body)
    assert root.findtext("operation/authentication/login/userid") == "u"
    assert root.findtext("operation/authentication/login/locationid") == "East"
    assert root.findtext("operation/content/function/getAPISession/locationid") == "East"
    with pytest.raises(ValueError):
        build_request(
            sender_id="s", sender_password="p", control_id="c", functions=[], session_id="x"
        )
    with pytest.raises(ValueError):
        build_request(
            sender_id="s",
            sender_password="p",
            control_id="c",
            functions=[Function("f", fn.lookup("VENDOR"))],
        )


def test_filters_round_trip_through_xml() -> None:
    original = and_(
        or_(gt("WHENMODIFIED", "01/02/2024 03:04:05"), eq("RECORDNO", 7)),
        in_("VENDORID", ["V1", "V2"]),
    )
    parsed = from_element(to_element(original))
    assert parsed.op == "and"
    assert parsed.children[0].op == "or"
    assert parsed.children[0].children[1].values == ("7",)
    assert parsed.children[1].values == ("V1", "V2")
    assert and_(eq("A", 1)) == eq("A", 1)  # a lone operand needs no <and>


def test_create_with_nested_fields_and_control_characters() -> None:
    el = fn.create("VENDOR", [{"NAME": "A\x00B & <C>", "DISPLAYCONTACT": {"EMAIL1": "x@y"}}])
    xml = etree.tostring(el)
    parsed = etree.fromstring(xml)
    assert parsed.findtext("VENDOR/NAME") == "AB & <C>"
    assert parsed.findtext("VENDOR/DISPLAYCONTACT/EMAIL1") == "x@y"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entity_bodies_are_refused_without_expansion(body: bytes) -> None:
    with pytest.raises(IntacctResponseError, match="refused"):
        parse_response(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b"<html><head><title>Error</title></head></html>",
        b"<?xml version='1.0'?><response><control><status>succ",
        b"not xml at all",
    ],
)
def test_empty_html_and_truncated_bodies_are_clear_transient_errors(body: bytes) -> None:
    with pytest.raises(IntacctMalformedResponse) as info:
        parse_response(body)
    assert info.value.retryable


def test_oversized_bodies_are_refused() -> None:
    from connector_pipeline.intacct.xml import safe_fromstring

    with pytest.raises(IntacctResponseError, match="exceeds"):
        safe_fromstring(b"<response>" + b"x" * 2000 + b"</response>", max_bytes=1000)


def test_unexpected_root_is_refused() -> None:
    with pytest.raises(IntacctResponseError):
        parse_response(b"<other/>")


def test_redaction_masks_secret_elements_in_any_case() -> None:
    text = redact_xml(
        b"<request><password>pw1</password><sessionid>S3SS</sessionid>"
        b"<VENDOR><TAXID>12-345</TAXID><ACHACCOUNTNUMBER>999</ACHACCOUNTNUMBER>"
        b"<NAME>Visible</NAME></VENDOR></request>"
    )
    for secret in ("pw1", "S3SS", "12-345", "999"):
        assert secret not in text
    assert "Visible" in text
    assert "<TAXID>***</TAXID>" in text


def _found(root: etree._Element, path: str) -> etree._Element:
    element = root.find(path)
    assert element is not None, f"no {path} in the request"
    return element
