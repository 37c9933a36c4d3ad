"""Intacct XML: request envelopes built with lxml, and a hardened response parser.

Requests are never assembled by concatenation: every text goes through
`sanitize_xml_text` and lxml does the escaping. Responses are parsed with no DTD, no
entity expansion and no network access, after a size check; a body that declares a DTD
(billion laughs, external entities) is refused outright.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree

from connector_pipeline import settings
from connector_pipeline.intacct.errors import (
    IntacctErrorDetail,
    IntacctMalformedResponse,
    IntacctResponseError,
    classify,
    error_detail,
)
from connector_pipeline.intacct.text import sanitize_xml_text

__all__ = [
    "Function",
    "IntacctAuthentication",
    "IntacctResponse",
    "IntacctResult",
    "Login",
    "build_request",
    "element_value",
    "parse_response",
    "redact_xml",
    "safe_fromstring",
    "sanitize_xml_text",
    "sub",
]

# ----------------------------------------------------------------------------- building


@dataclass(frozen=True)
class Login:
    user_id: str
    company_id: str
    password: str
    location_id: str | None = None


@dataclass(frozen=True)
class Function:
    """One `<function controlid=...>` and the element it wraps (e.g. `<query>`)."""

    control_id: str
    body: etree._Element

    @property
    def name(self) -> str:
        return str(self.body.tag)


def sub(parent: etree._Element, tag: str, text: Any = None) -> etree._Element:
    """Append `<tag>text</tag>`, sanitising the text; None leaves the element empty."""
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = sanitize_xml_text(str(text))
    return el


def append_value(parent: etree._Element, tag: str, value: Any) -> None:
    """Append a record field: mappings become nested elements, lists repeat the element."""
    if isinstance(value, Mapping):
        el = etree.SubElement(parent, tag)
        for key, inner in value.items():
            append_value(el, str(key), inner)
    elif isinstance(value, list | tuple):
        for item in value:
            append_value(parent, tag, item)
    elif isinstance(value, bool):
        sub(parent, tag, "true" if value else "false")
    else:
        sub(parent, tag, "" if value is None else value)


def build_request(
    *,
    sender_id: str,
    sender_password: str,
    control_id: str,
    functions: Sequence[Function],
    session_id: str | None = None,
    login: Login | None = None,
    unique_id: bool = False,
    transaction: bool = False,
) -> bytes:
    """A complete request body (UTF-8, with declaration). Exactly one of session_id/login."""
    if (session_id is None) == (login is None):
        raise ValueError("a request authenticates with exactly one of session_id or login")
    if not functions:
        raise ValueError("a request needs at least one function")
    root = etree.Element("request")
    control = sub(root, "control")
    sub(control, "senderid", sender_id)
    sub(control, "password", sender_password)
    sub(control, "controlid", control_id)
    sub(control, "uniqueid", "true" if unique_id else "false")
    sub(control, "dtdversion", settings.INTACCT_DTD_VERSION)
    sub(control, "includewhitespace", "false")
    operation = sub(root, "operation")
    operation.set("transaction", "true" if transaction else "false")
    auth = sub(operation, "authentication")
    if login is not None:
        login_el = sub(auth, "login")
        sub(login_el, "userid", login.user_id)
        sub(login_el, "companyid", login.company_id)
        sub(login_el, "password", login.password)
        if login.location_id:
            sub(login_el, "locationid", login.location_id)
    else:
        sub(auth, "sessionid", session_id)
    content = sub(operation, "content")
    for fn in functions:
        wrapper = sub(content, "function")
        wrapper.set("controlid", sanitize_xml_text(fn.control_id))
        wrapper.append(fn.body)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# ----------------------------------------------------------------------------- parsing

_DECLARATIONS = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_HTML_START = re.compile(rb"^\s*(?:<!doctype\s+html|<html|<head|<body)", re.IGNORECASE)


def safe_fromstring(body: bytes, *, max_bytes: int = settings.INTACCT_MAX_RESPONSE_BYTES) -> Any:
    """Parse untrusted XML: size-bounded, DTD-free, no entities, no network.

    Raises IntacctResponseError for unsafe or oversized input and IntacctMalformedResponse
    for empty, HTML or non-well-formed input.
    """
    if len(body) > max_bytes:
        raise IntacctResponseError(f"response of {len(body)} bytes exceeds {max_bytes}")
    if not body.strip():
        raise IntacctMalformedResponse("empty response body")
    if _HTML_START.match(body):
        raise IntacctMalformedResponse("an HTML page came back instead of XML")
    if _DECLARATIONS.search(body):
        raise IntacctResponseError(
            "response refused: it declares a DTD or entities (possible entity-expansion "
            "or external-entity attack)"
        )
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise IntacctMalformedResponse(f"response is not well-formed XML ({exc.msg})") from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise IntacctResponseError("response refused: it carries a document type declaration")
    return root


def element_value(el: etree._Element) -> Any:
    """Leaf -> its text ('' when empty); otherwise a dict of children (repeats -> list)."""
    children = [c for c in el if isinstance(c.tag, str)]
    if not children:
        return el.text or ""
    out: dict[str, Any] = {}
    for child in children:
        key = str(child.tag)
        value = element_value(child)
        if key in out:
            existing = out[key]
            if isinstance(existing, list):
                existing.append(value)
            else:
                out[key] = [existing, value]
        else:
            out[key] = value
    return out


def _text(el: etree._Element | None, path: str) -> str:
    if el is None:
        return ""
    found = el.find(path)
    return (found.text or "").strip() if found is not None else ""


def _errors(container: etree._Element | None) -> list[IntacctErrorDetail]:
    if container is None:
        return []
    message = container.find("errormessage")
    if message is None:
        return []
    return [
        error_detail(
            _text(e, "errorno"),
            _text(e, "description"),
            _text(e, "description2"),
            _text(e, "correction"),
        )
        for e in message.findall("error")
    ]


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _iso_or_none(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class IntacctResult:
    status: str
    function: str
    control_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    key: str | None = None
    list_type: str | None = None
    count: int | None = None
    total_count: int | None = None
    num_remaining: int | None = None
    offset: int | None = None
    result_id: str | None = None
    errors: list[IntacctErrorDetail] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def raise_for_status(self) -> None:
        """Raise the classified error unless the function succeeded."""
        if self.ok:
            return
        exc_type = classify("result", self.errors)
        raise exc_type(
            f"Result status: {self.status} for function {self.function}",
            self.errors,
            control_id=self.control_id,
        )


@dataclass
class IntacctAuthentication:
    status: str
    user_id: str = ""
    company_id: str = ""
    location_id: str = ""
    session_timestamp: datetime | None = None
    session_timeout: datetime | None = None


@dataclass
class IntacctResponse:
    control_status: str
    sender_id: str
    control_id: str
    authentication: IntacctAuthentication | None
    results: list[IntacctResult]

    def result_for(self, control_id: str) -> IntacctResult:
        for result in self.results:
            if result.control_id == control_id:
                return result
        raise IntacctResponseError(f"no result for function control id {control_id!r}")


def _parse_result(el: etree._Element) -> IntacctResult:
    result = IntacctResult(
        status=_text(el, "status"),
        function=_text(el, "function"),
        control_id=_text(el, "controlid"),
        errors=_errors(el),
    )
    key = el.find("key")
    if key is not None:
        result.key = (key.text or "").strip()
    data = el.find("data")
    if data is not None:
        result.list_type = data.get("listtype")
        result.count = _int_or_none(data.get("count"))
        result.total_count = _int_or_none(data.get("totalcount"))
        result.num_remaining = _int_or_none(data.get("numremaining"))
        result.offset = _int_or_none(data.get("offset"))
        result.result_id = data.get("resultId")
        for child in data:
            if not isinstance(child.tag, str):
                continue
            value = element_value(child)
            result.records.append(value if isinstance(value, dict) else {str(child.tag): value})
    return result


def _raise_level(level: str, errors: list[IntacctErrorDetail], control_id: str, http: int) -> None:
    exc_type = classify(level, errors)
    raise exc_type(
        f"Response {level} status failure",
        errors,
        control_id=control_id or None,
        http_status=http,
    )


def parse_response(body: bytes, *, http_status: int = 200) -> IntacctResponse:
    """Parse a gateway response; raise on control or authentication failure.

    Function failures are left in `results` (see `IntacctResult.raise_for_status`) so that
    a caller running several functions can see each outcome.
    """
    root = safe_fromstring(body)
    if root.tag != "response":
        raise IntacctResponseError(f"unexpected root element <{root.tag}>", http_status=http_status)
    control = root.find("control")
    if control is None:
        # Gateway-level errors (GW-0010, GW-0011) may come without a control block.
        errors = _errors(root)
        if errors:
            _raise_level("control", errors, "", http_status)
        raise IntacctResponseError("response has no <control> block", http_status=http_status)
    control_status = _text(control, "status")
    control_id = _text(control, "controlid")
    if control_status != "success":
        _raise_level("control", _errors(root), control_id, http_status)
    operation = root.find("operation")
    if operation is None:
        raise IntacctResponseError("response has no <operation>", control_id=control_id or None)
    auth_el = operation.find("authentication")
    authentication = None
    if auth_el is not None:
        authentication = IntacctAuthentication(
            status=_text(auth_el, "status"),
            user_id=_text(auth_el, "userid"),
            company_id=_text(auth_el, "companyid"),
            location_id=_text(auth_el, "locationid"),
            session_timestamp=_iso_or_none(_text(auth_el, "sessiontimestamp")),
            session_timeout=_iso_or_none(_text(auth_el, "sessiontimeout")),
        )
    if authentication is None or authentication.status != "success":
        _raise_level("authentication", _errors(operation), control_id, http_status)
    results = [_parse_result(r) for r in operation.findall("result")]
    return IntacctResponse(
        control_status=control_status,
        sender_id=_text(control, "senderid"),
        control_id=control_id,
        authentication=authentication,
        results=results,
    )


# ----------------------------------------------------------------------------- redaction

SECRET_ELEMENTS = (
    "password",
    "sessionid",
    "taxid",
    "accountnumber",
    "achaccountnumber",
    "wireaccountnumber",
    "bankaccountno",
    "cardnum",
    "ssn",
)
_SECRET_ELEMENT = re.compile(
    r"<(" + "|".join(SECRET_ELEMENTS) + r")(\s[^>]*)?>(.*?)</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)


def redact_xml(body: bytes | str) -> str:
    """The body as text with secret element contents replaced by `***` (for logs only)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return _SECRET_ELEMENT.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    tag, attrs = match.group(1), match.group(2) or ""
    return f"<{tag}{attrs}>***</{tag}>"
