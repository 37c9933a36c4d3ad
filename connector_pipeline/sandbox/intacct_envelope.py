"""The sandbox gateway's envelope: reading `<request>` and writing `<response>`.

Element order and attributes follow the recorded fixtures in ../shared/fixtures/intacct
(control block, authentication block, one `<result>` per function, `<errormessage>`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree

from connector_pipeline import settings
from connector_pipeline.sandbox.intacct_xml import UnsafeXml, parse_request_xml

ErrorTuple = tuple[str, str, str, str]  # errorno, description, description2, correction
# status, function, control id, data, errors
Outcome = tuple[str, str, str, Any, list[ErrorTuple]]

RATE_LIMIT_TEXT = (
    "Your API client has hit its assigned rate limit by submitting too many requests in a "
    "short period of time."
)


class FunctionFailed(Exception):
    """One function's failure: its errors, and the partial `<data>` a write still reports."""

    def __init__(self, errors: Sequence[ErrorTuple], data: etree._Element | None = None) -> None:
        super().__init__(errors[0][2] if errors else "failure")
        self.errors = list(errors)
        self.data = data


class EnvelopeRejected(Exception):
    """The request fails as a whole (control failure): `body` is the complete answer."""

    def __init__(self, body: bytes) -> None:
        super().__init__("control failure")
        self.body = body


@dataclass
class RequestControl:
    sender_id: str
    control_id: str
    unique_id: str
    dtd_version: str


@dataclass
class Envelope:
    control: RequestControl
    sender_password: str
    authentication: etree._Element
    functions: list[etree._Element]
    transaction: bool


def err(errorno: str, description2: str, correction: str = "") -> ErrorTuple:
    return (errorno, "", description2, correction)


def sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def text_of(el: etree._Element | None, path: str) -> str:
    if el is None:
        return ""
    found = el.find(path)
    return (found.text or "").strip() if found is not None else ""


def errormessage(parent: etree._Element, errors: Iterable[ErrorTuple]) -> None:
    message = sub(parent, "errormessage")
    for errorno, description, description2, correction in errors:
        error = sub(message, "error")
        sub(error, "errorno", errorno)
        sub(error, "description", description)
        sub(error, "description2", description2)
        sub(error, "correction", correction)


def tostring(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def write_control(root: etree._Element, request: RequestControl, status: str) -> None:
    control = sub(root, "control")
    sub(control, "status", status)
    sub(control, "senderid", request.sender_id)
    sub(control, "controlid", request.control_id)
    sub(control, "uniqueid", request.unique_id)
    sub(control, "dtdversion", request.dtd_version)


def control_failure(request: RequestControl, errors: Sequence[ErrorTuple]) -> bytes:
    root = etree.Element("response")
    write_control(root, request, "failure")
    errormessage(root, errors)
    return tostring(root)


def read_envelope(body: bytes) -> Envelope:
    """The request's parts, or EnvelopeRejected carrying the control failure to send."""
    try:
        root = parse_request_xml(body)
    except UnsafeXml as exc:
        blank = RequestControl("", "", "false", settings.INTACCT_DTD_VERSION)
        raise EnvelopeRejected(
            control_failure(blank, [err("XL03000003", f"XML Parse schema error: {exc}")])
        ) from None
    control = root.find("control")
    request = RequestControl(
        sender_id=text_of(control, "senderid"),
        control_id=text_of(control, "controlid"),
        unique_id=text_of(control, "uniqueid") or "false",
        dtd_version=text_of(control, "dtdversion") or settings.INTACCT_DTD_VERSION,
    )
    if root.tag != "request" or control is None:
        raise EnvelopeRejected(
            control_failure(
                request, [err("XL03000003", "XML Parse schema error: missing <control>")]
            )
        )
    operation = root.find("operation")
    content = operation.find("content") if operation is not None else None
    auth = operation.find("authentication") if operation is not None else None
    if operation is None or content is None or auth is None:
        raise EnvelopeRejected(
            control_failure(
                request,
                [err("XL03000003", "XML Parse schema error: missing <operation> content")],
            )
        )
    return Envelope(
        control=request,
        sender_password=text_of(control, "password"),
        authentication=auth,
        functions=list(content.findall("function")),
        transaction=(operation.get("transaction") or "false").lower() == "true",
    )


def function_name(function: etree._Element) -> str:
    body = function_body(function)
    return str(body.tag) if body is not None else ""


def function_body(function: etree._Element) -> etree._Element | None:
    return next((c for c in function if isinstance(c.tag, str)), None)


def success_response(request: RequestControl) -> tuple[etree._Element, etree._Element]:
    """`<response>` with a successful control block, and its `<operation>`."""
    response = etree.Element("response")
    write_control(response, request, "success")
    return response, sub(response, "operation")


def auth_failure(operation: etree._Element, user: str, company: str, message: str) -> None:
    auth = sub(operation, "authentication")
    sub(auth, "status", "failure")
    sub(auth, "userid", user)
    sub(auth, "companyid", company)
    errormessage(operation, [err("XL03000006", message)])


@dataclass
class AuthenticationBlock:
    user_id: str
    company_id: str
    location_id: str
    session_timestamp: str
    session_timeout: str


def write_operation(
    operation: etree._Element, auth: AuthenticationBlock, results: Sequence[Outcome]
) -> None:
    auth_el = sub(operation, "authentication")
    sub(auth_el, "status", "success")
    sub(auth_el, "userid", auth.user_id)
    sub(auth_el, "companyid", auth.company_id)
    sub(auth_el, "locationid", auth.location_id)
    sub(auth_el, "sessiontimestamp", auth.session_timestamp)
    sub(auth_el, "sessiontimeout", auth.session_timeout)
    for status, name, control_id, data, errors in results:
        result = sub(operation, "result")
        sub(result, "status", status)
        sub(result, "function", name)
        sub(result, "controlid", control_id)
        if data is not None:
            result.append(data)
        if errors:
            errormessage(result, errors)


def rate_limited_body() -> bytes:
    """SYNTHETIC GW-0010 body (no live capture exists): errors at gateway level."""
    root = etree.Element("response")
    control = sub(root, "control")
    sub(control, "status", "failure")
    errormessage(root, [err("GW-0010", RATE_LIMIT_TEXT, "Please try again later.")])
    return tostring(root)


def iso_in(value: datetime, tz: Any) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds")
