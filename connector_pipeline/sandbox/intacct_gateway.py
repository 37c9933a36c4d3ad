"""The sandbox gateway's protocol logic: request bytes in, response bytes out.

Response shapes follow the recorded fixtures in ../shared/fixtures/intacct (element
order and attributes included) and, where no fixture exists, the documented shapes in
reference/intacct-api.md. Shapes marked SYNTHETIC below (the `query` answer,
readUserFormatting, lookup and the GW-0010 body) are built from documentation, not from
a recorded response.

Everything here is synchronous and guarded by one lock; the ASGI layer in
`sandbox/intacct.py` adds HTTP concerns (concurrency, request rate, faults, latency).
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from lxml import etree

from connector_pipeline import settings
from connector_pipeline.intacct.errors import IntacctError
from connector_pipeline.intacct.filters import from_element, in_value_count
from connector_pipeline.intacct.timefmt import UserFormatting
from connector_pipeline.intacct.xml import element_value, safe_fromstring
from connector_pipeline.sandbox.faults import DEFAULT_KINDS
from connector_pipeline.sandbox.intacct_data import (
    TICKET_INTEGER_FIELDS,
    ObjectDef,
    merge,
    now_utc,
    object_defs,
    seed_companies,
    vendor_defaults,
)
from connector_pipeline.sandbox.intacct_query import (
    QueryError,
    compile_filter,
    order_records,
    parse_query_text,
)

# Faults the gateway produces itself when the shared middleware hands them over.
PROTOCOL_FAULTS = ("malformed_xml", "invalid_session", "rate_limit", "try_again_later")
DEFAULT_INTACCT_FAULTS = (*DEFAULT_KINDS, "http_524", *PROTOCOL_FAULTS)
RATE_LIMIT_TEXT = (
    "Your API client has hit its assigned rate limit by submitting too many requests in a "
    "short period of time."
)
ErrorTuple = tuple[str, str, str, str]  # errorno, description, description2, correction
# status, function, control id, data, errors
_Outcome = tuple[str, str, str, Any, list[ErrorTuple]]
_TIMESTAMP_CACHE_SIZE = 100_000


@dataclass
class IntacctSandboxConfig:
    sender_id: str = "sandbox-sender"
    sender_password: str = "sandbox-sender-password"
    company_id: str = "sandbox-co"
    user_id: str = "sandbox-user"
    user_password: str = "sandbox-user-password"
    session_timeout_s: float = settings.INTACCT_SANDBOX_SESSION_TIMEOUT_S
    user_gmt_offset: str = settings.INTACCT_SANDBOX_GMT_OFFSET
    user_dateformat: str = "/mdY"
    user_clock: str = "24"
    one_request_at_a_time: bool = True
    requests_per_second: float | None = None
    ticket_object: str = settings.INTACCT_TICKET_OBJECT
    seed_vendors: int = 0
    seed_customers: int = 0
    seed: int = 42
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = DEFAULT_INTACCT_FAULTS
    fault_script: tuple[str, ...] = ()
    fault_seed: int | None = None
    slow_ms: float = 1_500.0
    result_id_ttl_s: float = settings.INTACCT_SANDBOX_RESULT_ID_TTL_S
    # Sage does not document Retry-After on 429; None sends none (the client then backs off).
    retry_after_s: float | None = None


class FunctionFailed(Exception):
    def __init__(self, errors: Sequence[ErrorTuple], data: etree._Element | None = None) -> None:
        super().__init__(errors[0][2] if errors else "failure")
        self.errors = list(errors)
        self.data = data


def _err(errorno: str, description2: str, correction: str = "") -> ErrorTuple:
    return (errorno, "", description2, correction)


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def _errormessage(parent: etree._Element, errors: Iterable[ErrorTuple]) -> None:
    message = _sub(parent, "errormessage")
    for errorno, description, description2, correction in errors:
        error = _sub(message, "error")
        _sub(error, "errorno", errorno)
        _sub(error, "description", description)
        _sub(error, "description2", description2)
        _sub(error, "correction", correction)


def _tostring(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@dataclass
class SandboxSession:
    session_id: str
    location_id: str
    created: datetime
    expires: datetime


@dataclass
class ResultSet:
    object_def: ObjectDef
    fields: list[str]
    remaining: list[dict[str, Any]]
    pagesize: int
    total: int
    expires_monotonic: float


@dataclass
class _Request:
    sender_id: str
    control_id: str
    unique_id: str
    dtd_version: str


@dataclass
class Stats:
    requests: int = 0
    functions: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    # Changes made through the scenario API, kept apart so tests can prove what the
    # connector itself wrote.
    scenario_writes: Counter[str] = field(default_factory=Counter)
    sessions_opened: int = 0
    rejected_concurrent: int = 0
    rejected_rate: int = 0
    protocol_faults: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "functions": dict(self.functions),
            "writes": dict(self.writes),
            "scenario_writes": dict(self.scenario_writes),
            "sessions_opened": self.sessions_opened,
            "rejected_concurrent": self.rejected_concurrent,
            "rejected_rate": self.rejected_rate,
            "protocol_faults": dict(self.protocol_faults),
        }


class IntacctGateway:
    """One sandbox company: its records, sessions, resultIds and counters."""

    def __init__(self, config: IntacctSandboxConfig, clock: Callable[[], datetime] = now_utc):
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        with self.lock:
            self.defs = object_defs(self.config.ticket_object)
            self.records: dict[str, dict[int, dict[str, Any]]] = {n: {} for n in self.defs}
            self.next_key = 100
            self.sessions: dict[str, SandboxSession] = {}
            self.result_sets: dict[str, ResultSet] = {}
            self.stats = Stats()
            self._timestamp_cache: dict[datetime, str] = {}
            self.seed(self.config.seed_vendors, self.config.seed_customers, self.config.seed)

    @property
    def formatting(self) -> UserFormatting:
        return UserFormatting(
            dateformat=self.config.user_dateformat,
            gmtoffset=self.config.user_gmt_offset,
            clock=self.config.user_clock,
        )

    def _new_key(self) -> int:
        self.next_key += 1
        return self.next_key

    def seed(self, vendors: int, customers: int = 0, seed: int | None = None) -> None:
        """Replace VENDOR/CUSTOMER with deterministic data (ticket records are kept)."""
        seed = self.config.seed if seed is None else seed
        with self.lock:
            now = self.clock()
            for name, count, prefix, id_field in (
                ("VENDOR", vendors, "V", "VENDORID"),
                ("CUSTOMER", customers, "C", "CUSTOMERID"),
            ):
                self.records[name] = {}
                for record in seed_companies(
                    count, id_prefix=prefix, id_field=id_field, seed=seed, now=now
                ):
                    key = self._new_key()
                    record["RECORDNO"] = key
                    self.records[name][key] = record

    def object_def(self, name: str) -> ObjectDef | None:
        if name in self.defs:
            return self.defs[name]
        upper = name.upper()
        if upper in self.defs and not self.defs[upper].custom:
            return self.defs[upper]
        return None

    def find_by_id(self, object_name: str, id_value: str) -> dict[str, Any] | None:
        definition = self.defs[object_name]
        for record in self.records[object_name].values():
            if definition.id_field and str(record.get(definition.id_field)) == id_value:
                return record
        return None

    def touch(
        self,
        object_name: str,
        record: dict[str, Any],
        changes: Mapping[str, Any],
        *,
        scenario: bool = False,
    ) -> None:
        updated = merge(record, dict(changes))
        updated["WHENMODIFIED"] = max(self.clock(), record["WHENMODIFIED"] or self.clock())
        record.clear()
        record.update(updated)
        (self.stats.scenario_writes if scenario else self.stats.writes)[object_name] += 1

    def add_vendor(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            vendor_id = str(fields.get("VENDORID") or f"V{self.next_key + 1:05d}")
            if self.find_by_id("VENDOR", vendor_id) is not None:
                raise ValueError(f"VENDORID {vendor_id} already exists")
            record = merge(
                vendor_defaults(vendor_id, str(fields.get("NAME", vendor_id)), now),
                {k: v for k, v in fields.items() if k not in {"RECORDNO", "WHENMODIFIED"}},
            )
            record["RECORDNO"] = self._new_key()
            self.records["VENDOR"][record["RECORDNO"]] = record
            return record

    # ------------------------------------------------------------------ the protocol

    def handle(self, body: bytes, endpoint_url: str, fault: str | None = None) -> bytes:
        """Answer one gateway request (always HTTP 200, like the real gateway)."""
        with self.lock:
            self.stats.requests += 1
            if fault in PROTOCOL_FAULTS:
                self.stats.protocol_faults[fault] += 1
            answer = self._handle(body, endpoint_url, fault)
        if fault == "malformed_xml":
            # The work is done but the answer arrives cut short, as after a dropped proxy.
            return answer[: max(1, len(answer) // 2)]
        return answer

    def _control_failure(self, request: _Request, errors: Sequence[ErrorTuple]) -> bytes:
        root = etree.Element("response")
        self._control(root, request, "failure")
        _errormessage(root, errors)
        return _tostring(root)

    @staticmethod
    def _control(root: etree._Element, request: _Request, status: str) -> None:
        control = _sub(root, "control")
        _sub(control, "status", status)
        _sub(control, "senderid", request.sender_id)
        _sub(control, "controlid", request.control_id)
        _sub(control, "uniqueid", request.unique_id)
        _sub(control, "dtdversion", request.dtd_version)

    def _timestamp(self, value: datetime) -> str:
        # Rendering a 2,000-record page formats many equal timestamps: cache the text.
        cached = self._timestamp_cache.get(value)
        if cached is None:
            if len(self._timestamp_cache) > _TIMESTAMP_CACHE_SIZE:
                self._timestamp_cache.clear()
            cached = self._timestamp_cache[value] = self.formatting.format_timestamp(value)
        return cached

    def _iso(self, value: datetime) -> str:
        return value.astimezone(self.formatting.tz).isoformat(timespec="seconds")

    def _handle(self, body: bytes, endpoint_url: str, fault: str | None) -> bytes:
        try:
            root = safe_fromstring(body)
        except IntacctError as exc:
            blank = _Request("", "", "false", settings.INTACCT_DTD_VERSION)
            return self._control_failure(
                blank, [_err("XL03000003", f"XML Parse schema error: {exc.message}")]
            )
        control = root.find("control")
        request = _Request(
            sender_id=_text(control, "senderid"),
            control_id=_text(control, "controlid"),
            unique_id=_text(control, "uniqueid") or "false",
            dtd_version=_text(control, "dtdversion") or settings.INTACCT_DTD_VERSION,
        )
        if root.tag != "request" or control is None:
            return self._control_failure(
                request, [_err("XL03000003", "XML Parse schema error: missing <control>")]
            )
        if (
            request.sender_id != self.config.sender_id
            or _text(control, "password") != self.config.sender_password
        ):
            return self._control_failure(
                request, [_err("XL03000006", "Incorrect Intacct XML Partner ID or password.")]
            )
        operation = root.find("operation")
        content = operation.find("content") if operation is not None else None
        auth = operation.find("authentication") if operation is not None else None
        if operation is None or content is None or auth is None:
            return self._control_failure(
                request,
                [_err("XL03000003", "XML Parse schema error: missing <operation> content")],
            )
        response = etree.Element("response")
        self._control(response, request, "success")
        op_el = _sub(response, "operation")
        login = auth.find("login")
        session: SandboxSession | None = None
        now = self.clock()
        if login is not None:
            user, company = _text(login, "userid"), _text(login, "companyid")
            if (user, company, _text(login, "password")) != (
                self.config.user_id,
                self.config.company_id,
                self.config.user_password,
            ):
                self._auth_failure(op_el, user, company, "Sign-in information is incorrect")
                return _tostring(response)
            location = _text(login, "locationid")
        else:
            session_id = _text(auth, "sessionid")
            session = self.sessions.get(session_id)
            if fault == "invalid_session" and session is not None:
                del self.sessions[session_id]
                session = None
            if session is not None and session.expires <= now:
                del self.sessions[session_id]
                session = None
            if session is None:
                shown = f"{session_id[:1]}...." if session_id else ""
                self._auth_failure(op_el, "", "", f"Invalid session {shown}".strip())
                return _tostring(response)
            session.expires = now + timedelta(seconds=self.config.session_timeout_s)
            location = session.location_id

        functions = list(content.findall("function"))
        if fault == "try_again_later":
            # SYNTHETIC outage answer: the texts are those connectors key on (fylein,
            # hotglue); the errorno of this answer is not documented, so none is invented.
            outage = _err("", "The Service is Temporarily Off-line", "Please Try Again Later")
            functions_failed = [
                ("failure", _function_name(f), f.get("controlid", ""), None, [outage])
                for f in functions
            ]
            return self._finish(response, op_el, session, None, location, now, functions_failed)
        transaction = (operation.get("transaction") or "false").lower() == "true"
        snapshot = copy.deepcopy(self.records) if transaction else None
        results: list[_Outcome] = []
        new_session: SandboxSession | None = None
        for function in functions:
            control_id = function.get("controlid", "")
            body_el = next((c for c in function if isinstance(c.tag, str)), None)
            name = str(body_el.tag) if body_el is not None else ""
            self.stats.functions[name] += 1
            try:
                if body_el is None:
                    raise FunctionFailed([_err("XL03000003", "Empty <function> element")])
                data: etree._Element | None
                if name == "getAPISession":
                    new_session, data = self._get_api_session(body_el, location, endpoint_url)
                else:
                    data = self._dispatch(name, body_el)
                results.append(("success", name, control_id, data, []))
            except FunctionFailed as failed:
                results.append(("failure", name, control_id, failed.data, failed.errors))
        if transaction and any(r[0] == "failure" for r in results):
            assert snapshot is not None
            self.records = snapshot
            rolled_back = _err(
                "XL03000009",
                "The entire transaction in this operation has been rolled back due to an error.",
            )
            single = len(results) == 1
            rewritten: list[_Outcome] = []
            for status, name, cid, _data, errors in results:
                if status == "failure":
                    # A lone failed function reports "aborted" with both errors (fixture
                    # result_aborted_transaction.xml); in a batch the culprit stays "failure".
                    rewritten.append(
                        ("aborted", name, cid, None, [*errors, rolled_back])
                        if single
                        else ("failure", name, cid, None, errors)
                    )
                else:
                    rewritten.append(("aborted", name, cid, None, [rolled_back]))
            results = rewritten

        return self._finish(response, op_el, session, new_session, location, now, results)

    def _finish(
        self,
        response: etree._Element,
        op_el: etree._Element,
        session: SandboxSession | None,
        new_session: SandboxSession | None,
        location: str,
        now: datetime,
        results: Sequence[_Outcome],
    ) -> bytes:
        shown_session = new_session or session
        auth_el = _sub(op_el, "authentication")
        _sub(auth_el, "status", "success")
        _sub(auth_el, "userid", self.config.user_id)
        _sub(auth_el, "companyid", self.config.company_id)
        _sub(auth_el, "locationid", shown_session.location_id if shown_session else location)
        if shown_session is not None:
            _sub(auth_el, "sessiontimestamp", self._iso(shown_session.created))
            _sub(auth_el, "sessiontimeout", self._iso(shown_session.expires))
        else:
            _sub(auth_el, "sessiontimestamp", self._iso(now))
            expires = now + timedelta(seconds=self.config.session_timeout_s)
            _sub(auth_el, "sessiontimeout", self._iso(expires))
        for status, name, control_id, data, errors in results:
            result = _sub(op_el, "result")
            _sub(result, "status", status)
            _sub(result, "function", name)
            _sub(result, "controlid", control_id)
            if data is not None:
                result.append(data)
            if errors:
                _errormessage(result, errors)
        return _tostring(response)

    @staticmethod
    def _auth_failure(op_el: etree._Element, user: str, company: str, text: str) -> None:
        auth = _sub(op_el, "authentication")
        _sub(auth, "status", "failure")
        _sub(auth, "userid", user)
        _sub(auth, "companyid", company)
        _errormessage(op_el, [_err("XL03000006", text)])

    # ------------------------------------------------------------------ functions

    def _dispatch(self, name: str, el: etree._Element) -> etree._Element | None:
        handlers: dict[str, Callable[[etree._Element], etree._Element | None]] = {
            "readUserFormatting": self._read_user_formatting,
            "query": self._query,
            "readByQuery": self._read_by_query,
            "readMore": self._read_more,
            "read": self._read,
            "create": self._create,
            "update": self._update,
            "delete": self._delete,
            "lookup": self._lookup,
        }
        handler = handlers.get(name)
        if handler is None:
            if name.startswith("create_"):
                return self._legacy_create(name, el)
            raise FunctionFailed([_err("XL03000003", f"Unknown function {name}")])
        return handler(el)

    def _get_api_session(
        self, el: etree._Element, location: str, endpoint_url: str
    ) -> tuple[SandboxSession, etree._Element]:
        location_el = el.find("locationid")
        if location_el is not None:
            location = (location_el.text or "").strip()
        now = self.clock()
        session = SandboxSession(
            session_id=secrets.token_urlsafe(24) + "..",
            location_id=location,
            created=now,
            expires=now + timedelta(seconds=self.config.session_timeout_s),
        )
        self.sessions[session.session_id] = session
        self.stats.sessions_opened += 1
        data = etree.Element("data")
        api = _sub(data, "api")
        _sub(api, "sessionid", session.session_id)
        _sub(api, "endpoint", endpoint_url)
        _sub(api, "locationid", location)
        return session, data

    def _read_user_formatting(self, _el: etree._Element) -> etree._Element:
        # SYNTHETIC shape: the fields readUserFormatting documents (locale, dateformat,
        # gmtoffset, clock) under one element; no recorded answer was available.
        data = etree.Element("data", listtype="userformatting", count="1")
        record = _sub(data, "userformatting")
        _sub(record, "locale", "en_US")
        _sub(record, "dateformat", self.config.user_dateformat)
        _sub(record, "gmtoffset", self.config.user_gmt_offset)
        _sub(record, "clock", self.config.user_clock)
        return data

    def _require_object(self, el: etree._Element, tag: str = "object") -> ObjectDef:
        name = _text(el, tag)
        definition = self.object_def(name)
        if definition is None:
            raise FunctionFailed([_err("Query Failed", f"Object definition {name} not found")])
        return definition

    def _check_fields(self, definition: ObjectDef, paths: Iterable[str]) -> None:
        bad = [p for p in paths if p.split(".", 1)[0] not in definition.fields]
        if bad:
            raise FunctionFailed(
                [
                    _err(
                        "Query Failed",
                        f"Invalid fields list {','.join(bad)}",
                        "Check the field names",
                    )
                ]
            )

    def _filtered(
        self,
        definition: ObjectDef,
        predicate: Callable[[Mapping[str, Any]], bool] | None,
        orders: Sequence[tuple[str, bool]],
    ) -> list[dict[str, Any]]:
        records = list(self.records[definition.name].values())
        if predicate is not None:
            records = [r for r in records if predicate(r)]
        return order_records(records, orders or [(definition.key_field, True)], self.formatting)

    def _query(self, el: etree._Element) -> etree._Element:
        """SYNTHETIC answer shape (no recorded `query` response is available): the documented
        `<data listtype totalcount offset count numremaining>`, upper-case record elements."""
        definition = self._require_object(el)
        select = el.find("select")
        fields = (
            [(f.text or "").strip() for f in select.findall("field")] if select is not None else []
        )
        if not fields:
            raise FunctionFailed([_err("Query Failed", "The select element is required")])
        self._check_fields(definition, fields)
        pagesize = _int(el, "pagesize", 100)
        offset = _int(el, "offset", 0)
        if not 1 <= pagesize <= settings.INTACCT_QUERY_MAX_PAGESIZE:
            raise FunctionFailed(
                [
                    _err(
                        "Query Failed",
                        f"pagesize {pagesize} is invalid: it must be between 1 and "
                        f"{settings.INTACCT_QUERY_MAX_PAGESIZE}",
                    )
                ]
            )
        if offset < 0:
            raise FunctionFailed([_err("Query Failed", f"offset {offset} is invalid")])
        case_insensitive = _text(el, "options/caseinsensitive").lower() == "true"
        predicate = None
        filter_el = el.find("filter")
        if filter_el is not None:
            operators = [c for c in filter_el if isinstance(c.tag, str)]
            try:
                if len(operators) != 1:
                    raise QueryError("<filter> takes exactly one operator")
                parsed = from_element(operators[0])
                if in_value_count(parsed) > settings.INTACCT_MAX_IN_VALUES:
                    raise QueryError(
                        f"The in operator accepts at most {settings.INTACCT_MAX_IN_VALUES} values"
                    )
                self._check_fields(definition, _fields_in(parsed))
                predicate = compile_filter(
                    parsed, self.formatting, case_insensitive=case_insensitive
                )
            except ValueError as exc:
                raise FunctionFailed([_err("Query Failed", str(exc))]) from None
        orders = [
            (_text(order, "field"), order.find("descending") is None)
            for order in el.findall("orderby/order")
        ]
        self._check_fields(definition, [f for f, _ in orders])
        try:
            records = self._filtered(definition, predicate, orders)
        except QueryError as exc:
            raise FunctionFailed([_err("Query Failed", str(exc))]) from None
        page = records[offset : offset + pagesize]
        remaining = max(0, len(records) - offset - len(page))
        data = etree.Element("data")
        data.set("listtype", definition.record_tag)
        data.set("totalcount", str(len(records)))
        data.set("offset", str(offset))
        data.set("count", str(len(page)))
        data.set("numremaining", str(remaining))
        for record in page:
            self._render(data, definition.record_tag, record, fields)
        return data

    def _read_by_query(self, el: etree._Element) -> etree._Element:
        definition = self._require_object(el)
        fields = _field_list(_text(el, "fields"))
        if fields:
            self._check_fields(definition, fields)
        pagesize = _int(el, "pagesize", 100)
        if not 1 <= pagesize <= settings.INTACCT_READBYQUERY_MAX_PAGESIZE:
            raise FunctionFailed(
                [
                    _err(
                        "Query Failed",
                        f"pagesize {pagesize} is invalid: readByQuery returns at most "
                        f"{settings.INTACCT_READBYQUERY_MAX_PAGESIZE} records per page",
                    )
                ]
            )
        try:
            parsed = parse_query_text(_text(el, "query"))
            if parsed is not None:
                self._check_fields(definition, _fields_in(parsed))
            predicate = compile_filter(parsed, self.formatting) if parsed is not None else None
            records = self._filtered(definition, predicate, [])
        except ValueError as exc:
            raise FunctionFailed([_err("Query Failed", str(exc))]) from None
        result_set = ResultSet(
            definition,
            fields,
            [copy.deepcopy(r) for r in records],
            pagesize,
            len(records),
            time.monotonic() + self.config.result_id_ttl_s,
        )
        result_id = secrets.token_hex(16) if len(records) > pagesize else ""
        return self._page(result_set, result_id)

    def _page(self, result_set: ResultSet, result_id: str) -> etree._Element:
        page = result_set.remaining[: result_set.pagesize]
        result_set.remaining = result_set.remaining[result_set.pagesize :]
        tag = result_set.object_def.name.lower()
        data = etree.Element("data")
        data.set("listtype", tag)
        data.set("count", str(len(page)))
        data.set("totalcount", str(result_set.total))
        data.set("numremaining", str(len(result_set.remaining)))
        data.set("resultId", result_id)
        if result_id:
            if result_set.remaining:
                self.result_sets[result_id] = result_set
            else:
                self.result_sets.pop(result_id, None)
        for record in page:
            self._render(data, tag, record, result_set.fields)
        return data

    def _read_more(self, el: etree._Element) -> etree._Element:
        result_id = _text(el, "resultId")
        result_set = self.result_sets.get(result_id)
        if result_set is not None and result_set.expires_monotonic <= time.monotonic():
            del self.result_sets[result_id]
            result_set = None
        if result_set is None:
            raise FunctionFailed(
                [
                    _err(
                        "readMore failed",
                        f"Attempt to readMore with an invalid or expired resultId: {result_id}",
                    )
                ]
            )
        return self._page(result_set, result_id)

    def _read(self, el: etree._Element) -> etree._Element:
        definition = self._require_object(el)
        keys = [k.strip() for k in _text(el, "keys").split(",") if k.strip()]
        if len(keys) > settings.INTACCT_MAX_KEYS_PER_READ:
            raise FunctionFailed(
                [
                    _err(
                        "BL01001973",
                        f"read accepts at most {settings.INTACCT_MAX_KEYS_PER_READ} keys",
                    )
                ]
            )
        fields = _field_list(_text(el, "fields"))
        if fields:
            self._check_fields(definition, fields)
        data = etree.Element("data")
        data.set("listtype", definition.record_tag)
        found = []
        for key in keys:
            record = self.records[definition.name].get(int(key)) if key.isdigit() else None
            if record is not None:
                found.append(record)
        data.set("count", str(len(found)))
        for record in found:
            self._render(data, definition.record_tag, record, fields)
        return data

    def _lookup(self, el: etree._Element) -> etree._Element:
        # SYNTHETIC shape, after the documented lookup content (fields, relationships).
        definition = self._require_object(el)
        data = etree.Element("data", listtype="All", count="1")
        type_el = _sub(data, "Type")
        type_el.set("Name", definition.name)
        type_el.set("DocumentType", "")
        fields_el = _sub(type_el, "Fields")
        for name in sorted(definition.fields):
            field_el = _sub(fields_el, "Field")
            _sub(field_el, "ID", name)
            _sub(field_el, "DATATYPE", _datatype(name))
        relationships = _sub(type_el, "Relationships")
        for related_by, target in definition.relationships.items():
            rel = _sub(relationships, "Relationship")
            _sub(rel, "OBJECTPATH", f"R_{target.lower()}")
            _sub(rel, "OBJECTNAME", target.lower())
            _sub(rel, "LABEL", target.title())
            _sub(rel, "RELATIONSHIPTYPE", "MANY2ONE")
            _sub(rel, "RELATEDBY", related_by)
        return data

    # ------------------------------------------------------------------ writes

    def _write_records(
        self, el: etree._Element, verb: str
    ) -> list[tuple[ObjectDef, dict[str, Any]]]:
        children = [c for c in el if isinstance(c.tag, str)]
        if not children:
            raise FunctionFailed([_err("BL01001973", f"No records to {verb}")])
        if len(children) > settings.INTACCT_MAX_RECORDS_PER_WRITE:
            raise FunctionFailed(
                [
                    _err(
                        "BL01001973",
                        f"A {verb} function accepts at most "
                        f"{settings.INTACCT_MAX_RECORDS_PER_WRITE} records; got {len(children)}",
                        "Split the records over several functions.",
                    )
                ]
            )
        out = []
        for child in children:
            definition = self.object_def(str(child.tag))
            if definition is None:
                raise FunctionFailed(
                    [_err("BL01001973", f"Object definition {child.tag} not found")]
                )
            value = element_value(child)
            out.append((definition, value if isinstance(value, dict) else {}))
        return out

    def _validate(
        self, definition: ObjectDef, record: dict[str, Any], verb: str, *, creating: bool
    ) -> list[ErrorTuple]:
        label = definition.name.lower()
        could_not = _err("BL01001973", f"Could not {verb} {label} record!")
        unknown = [k for k in record if k not in definition.fields]
        if definition.custom and unknown:
            return [
                _err("BL01001973", f"Invalid field(s) {', '.join(unknown)} for {definition.name}"),
                could_not,
            ]
        for name in TICKET_INTEGER_FIELDS & set(record) if definition.custom else ():
            if str(record[name]).strip() and not _is_int(record[name]):
                return [
                    _err("BL01001973", f"Field {name} must be an integer; got {record[name]!r}"),
                    could_not,
                ]
        for related_by, target in definition.relationships.items():
            if related_by in record and str(record[related_by]).strip():
                value = str(record[related_by]).strip()
                if not value.isdigit() or int(value) not in self.records[target]:
                    return [
                        _err(
                            "BL01001973",
                            f"Invalid {target.title()} '{value}' specified for field "
                            f"{related_by}: no {target} record with RECORDNO {value} exists",
                            f"Use the RECORDNO of an existing {target} record.",
                        ),
                        could_not,
                    ]
        if creating and not definition.custom and not str(record.get("NAME", "")).strip():
            return [_err("BL01001973", "Required field NAME is missing"), could_not]
        if creating and definition.id_field and not definition.custom:
            id_value = str(record.get(definition.id_field, "")).strip()
            if id_value and self.find_by_id(definition.name, id_value) is not None:
                return [
                    _err(
                        "BL34000061",
                        f"Another {definition.name.title()} with the given value(s) "
                        f"{id_value} already exists",
                        "Use a unique value instead.",
                    ),
                    could_not,
                ]
        return []

    def _typed_fields(self, definition: ObjectDef, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        if definition.custom:
            for name in TICKET_INTEGER_FIELDS & set(out):
                text = str(out[name]).strip()
                out[name] = int(text) if text else None
        return out

    def _written(self, data: etree._Element, definition: ObjectDef, record: dict[str, Any]) -> None:
        child = _sub(data, definition.name.lower())
        _sub(child, definition.key_field, str(record[definition.key_field]))
        if definition.id_field:
            _sub(child, definition.id_field, str(record.get(definition.id_field, "")))

    def _create(self, el: etree._Element) -> etree._Element:
        data = etree.Element("data", listtype="objects")
        errors: list[ErrorTuple] = []
        created = 0
        for definition, fields in self._write_records(el, "create"):
            problems = self._validate(definition, fields, "create", creating=True)
            if problems:
                errors.extend(problems)
                continue
            now = self.clock()
            record = self._typed_fields(definition, fields)
            record.pop(definition.key_field, None)
            key = self._new_key()
            record[definition.key_field] = key
            if (
                definition.id_field
                and not definition.custom
                and not record.get(definition.id_field)
            ):
                record[definition.id_field] = f"{definition.name[0]}{key:05d}"
            record["WHENCREATED"] = now
            record["WHENMODIFIED"] = now
            self.records[definition.name][key] = record
            self.stats.writes[definition.name] += 1
            self._written(data, definition, record)
            created += 1
        data.set("count", str(created))
        if errors:
            raise FunctionFailed(errors, data)
        return data

    def _update(self, el: etree._Element) -> etree._Element:
        data = etree.Element("data", listtype="objects")
        errors: list[ErrorTuple] = []
        updated = 0
        for definition, fields in self._write_records(el, "update"):
            record = self._locate(definition, fields)
            if record is None:
                shown = fields.get(definition.key_field) or fields.get(definition.id_field or "")
                errors.append(
                    _err(
                        "BL01001973",
                        f"Cannot find {definition.name.lower()} with key '{shown}' to update.",
                    )
                )
                continue
            changes = {
                k: v
                for k, v in fields.items()
                if k not in {definition.key_field, "WHENCREATED", "WHENMODIFIED"}
            }
            problems = self._validate(definition, changes, "update", creating=False)
            if problems:
                errors.extend(problems)
                continue
            self.touch(definition.name, record, self._typed_fields(definition, changes))
            self._written(data, definition, record)
            updated += 1
        data.set("count", str(updated))
        if errors:
            raise FunctionFailed(errors, data)
        return data

    def _locate(self, definition: ObjectDef, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        key = str(fields.get(definition.key_field, "")).strip()
        if key.isdigit():
            return self.records[definition.name].get(int(key))
        if definition.id_field and not definition.custom:
            id_value = str(fields.get(definition.id_field, "")).strip()
            if id_value:
                return self.find_by_id(definition.name, id_value)
        return None

    def _delete(self, el: etree._Element) -> None:
        definition = self._require_object(el)
        keys = [k.strip() for k in _text(el, "keys").split(",") if k.strip()]
        if len(keys) > settings.INTACCT_MAX_KEYS_PER_READ:
            raise FunctionFailed(
                [
                    _err(
                        "BL01001973",
                        f"delete accepts at most {settings.INTACCT_MAX_KEYS_PER_READ} keys",
                    )
                ]
            )
        missing = [
            k for k in keys if not k.isdigit() or int(k) not in self.records[definition.name]
        ]
        if missing:
            raise FunctionFailed(
                [
                    _err(
                        "BL01001973",
                        f"Cannot find {definition.name.lower()} with key '{missing[0]}' to delete.",
                    )
                ]
            )
        for key in keys:
            del self.records[definition.name][int(key)]
            self.stats.writes[definition.name] += 1
        return None

    def _legacy_create(self, name: str, el: etree._Element) -> etree._Element:
        """2.1-style `create_<object>` answers with `<key>` instead of `<data>`."""
        object_name = name.removeprefix("create_")
        fields = element_value(el)
        key = ""
        if isinstance(fields, dict):
            key = str(fields.get(f"{object_name}id") or fields.get("key") or "")
        key = key or str(self._new_key())
        self.stats.writes[f"legacy:{object_name}"] += 1
        key_el = etree.Element("key")
        key_el.text = key
        return key_el

    # ------------------------------------------------------------------ rendering

    def _render(
        self, parent: etree._Element, tag: str, record: Mapping[str, Any], fields: Sequence[str]
    ) -> None:
        el = _sub(parent, tag)
        if not fields:
            for name, item in record.items():
                self._render_value(el, name, item)
            return
        for path in fields:
            parts = path.split(".")
            target = el
            for part in parts[:-1]:
                existing = target.find(part)
                target = existing if existing is not None else _sub(target, part)
            value: Any = record
            for part in parts:
                value = value.get(part) if isinstance(value, dict) else None
            self._render_value(target, parts[-1], value)

    def _render_value(self, parent: etree._Element, name: str, value: Any) -> None:
        if isinstance(value, dict):
            el = _sub(parent, name)
            for key, inner in value.items():
                self._render_value(el, key, inner)
        elif isinstance(value, list):
            for item in value:
                self._render_value(parent, name, item)
        elif isinstance(value, datetime):
            _sub(parent, name, self._timestamp(value))
        elif isinstance(value, bool):
            _sub(parent, name, "true" if value else "false")
        elif value is None:
            _sub(parent, name)
        else:
            _sub(parent, name, str(value))

    # ------------------------------------------------------------------ gateway errors

    @staticmethod
    def rate_limited_body() -> bytes:
        """SYNTHETIC GW-0010 body (no live capture exists): errors at gateway level."""
        root = etree.Element("response")
        control = _sub(root, "control")
        _sub(control, "status", "failure")
        _errormessage(root, [_err("GW-0010", RATE_LIMIT_TEXT, "Please try again later.")])
        return _tostring(root)

    def records_json(self, object_name: str) -> list[dict[str, Any]] | None:
        definition = self.object_def(object_name)
        if definition is None:
            return None
        with self.lock:
            return [copy.deepcopy(r) for r in self.records[definition.name].values()]


def _function_name(function: etree._Element) -> str:
    body = next((c for c in function if isinstance(c.tag, str)), None)
    return str(body.tag) if body is not None else ""


def _text(el: etree._Element | None, path: str) -> str:
    if el is None:
        return ""
    found = el.find(path)
    return (found.text or "").strip() if found is not None else ""


def _int(el: etree._Element, path: str, default: int) -> int:
    text = _text(el, path)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise FunctionFailed([_err("Query Failed", f"{path} must be an integer")]) from None


def _is_int(value: Any) -> bool:
    return str(value).strip().lstrip("-").isdigit()


def _field_list(text: str) -> list[str]:
    if not text.strip() or text.strip() == "*":
        return []
    return [f.strip() for f in text.split(",") if f.strip()]


def _fields_in(parsed: Any) -> set[str]:
    if parsed.field is not None:
        return {parsed.field}
    out: set[str] = set()
    for child in parsed.children:
        out |= _fields_in(child)
    return out


def _datatype(name: str) -> str:
    if name in {"WHENCREATED", "WHENMODIFIED"}:
        return "TIMESTAMP"
    if name in {"RECORDNO", "id", *TICKET_INTEGER_FIELDS}:
        return "INTEGER"
    if name in {"TOTALDUE", "CREDITLIMIT"}:
        return "CURRENCY"
    return "TEXT"


def decimal_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(type(value).__name__)
