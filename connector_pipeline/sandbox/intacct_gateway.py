"""The sandbox gateway's protocol logic: request bytes in, response bytes out.

One request goes through four seams, each in its own module: the envelope
(`intacct_envelope`: control block, sender check, response writing), authentication
(`intacct_auth`: login or session), the functions (`intacct_reads`, `intacct_writes`,
`intacct_lookup`) and, for `transaction="true"`, the rollback (`intacct_rollback`).

Response shapes follow the recorded fixtures in ../shared/fixtures/intacct and, where no
fixture exists, the documented shapes in reference/intacct-api.md. Shapes marked
SYNTHETIC (the `query` answer, readUserFormatting and the GW-0010 body) are built from
documentation, not from a recorded response.

Everything here is synchronous and guarded by one lock; the ASGI layer in
`sandbox/intacct.py` adds HTTP concerns (concurrency, request rate, faults, latency).
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

from connector_pipeline import settings
from connector_pipeline.sandbox.faults import DEFAULT_KINDS
from connector_pipeline.sandbox.intacct_auth import (
    Authenticated,
    AuthFailure,
    Credentials,
    SandboxSession,
    SessionStore,
    authenticate,
    sender_ok,
)
from connector_pipeline.sandbox.intacct_data import (
    ObjectDef,
    merge,
    now_utc,
    object_defs,
    seed_companies,
    vendor_defaults,
)
from connector_pipeline.sandbox.intacct_envelope import (
    AuthenticationBlock,
    Envelope,
    EnvelopeRejected,
    FunctionFailed,
    Outcome,
    auth_failure,
    control_failure,
    err,
    function_body,
    function_name,
    iso_in,
    read_envelope,
    success_response,
    tostring,
    write_operation,
)
from connector_pipeline.sandbox.intacct_formatting import SandboxFormatting
from connector_pipeline.sandbox.intacct_reads import Reads
from connector_pipeline.sandbox.intacct_render import Renderer
from connector_pipeline.sandbox.intacct_rollback import needs_rollback, rolled_back
from connector_pipeline.sandbox.intacct_triggers import TriggerDispatcher
from connector_pipeline.sandbox.intacct_writes import Writes

# Faults the gateway produces itself when the shared middleware hands them over.
PROTOCOL_FAULTS = ("malformed_xml", "invalid_session", "rate_limit", "try_again_later")
DEFAULT_INTACCT_FAULTS = (*DEFAULT_KINDS, "http_524", *PROTOCOL_FAULTS)


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
    user_locale: str = "en_US"
    one_request_at_a_time: bool = True
    requests_per_second: float | None = None
    ticket_object: str = settings.INTACCT_TICKET_OBJECT
    # Scenario switches for `ml-connector check`'s failure cases: a company without the
    # ticket custom object, or with it but without its VENDOR relationship field.
    ticket_object_exists: bool = True
    ticket_relationship_exists: bool = True
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
    # Outbound webhooks on VENDOR / CUSTOMER changes: delivered to this URL when set.
    trigger_url: str | None = None
    trigger_client_id: str = settings.INTACCT_SANDBOX_TRIGGER_CLIENT_ID
    trigger_client_secret: str = settings.INTACCT_SANDBOX_TRIGGER_CLIENT_SECRET

    @property
    def credentials(self) -> Credentials:
        return Credentials(
            self.sender_id, self.sender_password, self.company_id, self.user_id, self.user_password
        )


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
        self.renderer = Renderer(lambda: self.formatting)
        # Outbound webhooks (Platform Triggers): off until a target is configured.
        self.triggers = TriggerDispatcher(seed=config.seed)
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        with self.lock:
            self.defs = self._object_defs()
            self.records: dict[str, dict[int, dict[str, Any]]] = {n: {} for n in self.defs}
            self.next_key = 100
            self.session_store = SessionStore()
            self.reads = Reads(self)
            self.writes = Writes(self)
            self.stats = Stats()
            self.seed(self.config.seed_vendors, self.config.seed_customers, self.config.seed)

    def _object_defs(self) -> dict[str, ObjectDef]:
        return object_defs(
            self.config.ticket_object,
            with_ticket_object=self.config.ticket_object_exists,
            with_relationship=self.config.ticket_relationship_exists,
        )

    def redefine_objects(self) -> None:
        """Apply changed object switches; records of a removed object are dropped."""
        with self.lock:
            self.defs = self._object_defs()
            self.records = {n: self.records.get(n, {}) for n in self.defs}

    @property
    def sessions(self) -> dict[str, SandboxSession]:
        return self.session_store.sessions

    @property
    def result_sets(self) -> dict[str, Any]:
        return self.reads.result_sets

    @property
    def formatting(self) -> SandboxFormatting:
        return SandboxFormatting(
            dateformat=self.config.user_dateformat,
            gmtoffset=self.config.user_gmt_offset,
            clock=self.config.user_clock,
            locale=self.config.user_locale,
        )

    def new_key(self) -> int:
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
                    key = self.new_key()
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
        self.triggers.changed(object_name, record, "update")

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
            record["RECORDNO"] = self.new_key()
            self.records["VENDOR"][record["RECORDNO"]] = record
            self.triggers.changed("VENDOR", record, "create")
            return record

    def records_json(self, object_name: str) -> list[dict[str, Any]] | None:
        definition = self.object_def(object_name)
        if definition is None:
            return None
        with self.lock:
            return [copy.deepcopy(r) for r in self.records[definition.name].values()]

    # ------------------------------------------------------------------ the protocol

    def handle(self, body: bytes, endpoint_url: str, fault: str | None = None) -> bytes:
        """Answer one gateway request (always HTTP 200, like the real gateway)."""
        with self.lock:
            self.stats.requests += 1
            if fault in PROTOCOL_FAULTS:
                self.stats.protocol_faults[fault] += 1
            try:
                answer = self._handle(read_envelope(body), endpoint_url, fault)
            except EnvelopeRejected as rejected:
                answer = rejected.body
        if fault == "malformed_xml":
            # The work is done but the answer arrives cut short, as after a dropped proxy.
            return answer[: max(1, len(answer) // 2)]
        return answer

    def _handle(self, envelope: Envelope, endpoint_url: str, fault: str | None) -> bytes:
        if not sender_ok(
            self.config.credentials, envelope.control.sender_id, envelope.sender_password
        ):
            return control_failure(
                envelope.control,
                [err("XL03000006", "Incorrect Intacct XML Partner ID or password.")],
            )
        response, operation = success_response(envelope.control)
        now = self.clock()
        auth = authenticate(
            envelope.authentication,
            self.config.credentials,
            self.session_store,
            now,
            self.config.session_timeout_s,
            invalidate_session=fault == "invalid_session",
        )
        if isinstance(auth, AuthFailure):
            auth_failure(operation, auth.user_id, auth.company_id, auth.message)
            return tostring(response)
        if fault == "try_again_later":
            results = self._outage(envelope.functions)
            session = auth.session
        else:
            results, session = self._run(envelope, auth, endpoint_url)
        write_operation(operation, self._auth_block(session, auth, now), results)
        return tostring(response)

    @staticmethod
    def _outage(functions: list[etree._Element]) -> list[Outcome]:
        # SYNTHETIC outage answer: the texts are those connectors key on (fylein,
        # hotglue); the errorno of this answer is not documented, so none is invented.
        outage = err("", "The Service is Temporarily Off-line", "Please Try Again Later")
        return [
            ("failure", function_name(f), f.get("controlid", ""), None, [outage]) for f in functions
        ]

    def _run(
        self, envelope: Envelope, auth: Authenticated, endpoint_url: str
    ) -> tuple[list[Outcome], SandboxSession | None]:
        snapshot = copy.deepcopy(self.records) if envelope.transaction else None
        results: list[Outcome] = []
        session = auth.session
        data: etree._Element | None
        for function in envelope.functions:
            control_id = function.get("controlid", "")
            body = function_body(function)
            name = str(body.tag) if body is not None else ""
            self.stats.functions[name] += 1
            try:
                if body is None:
                    raise FunctionFailed([err("XL03000003", "Empty <function> element")])
                if name == "getAPISession":
                    session, data = self._get_api_session(body, auth.location_id, endpoint_url)
                else:
                    data = self._dispatch(name, body)
                results.append(("success", name, control_id, data, []))
            except FunctionFailed as failed:
                results.append(("failure", name, control_id, failed.data, failed.errors))
        if needs_rollback(envelope.transaction, results):
            assert snapshot is not None
            self.records = snapshot
            results = rolled_back(results)
        return results, session

    def _auth_block(
        self, session: SandboxSession | None, auth: Authenticated, now: datetime
    ) -> AuthenticationBlock:
        tz = self.formatting.tz
        if session is not None:
            created, expires, location = session.created, session.expires, session.location_id
        else:
            created = now
            expires = now + timedelta(seconds=self.config.session_timeout_s)
            location = auth.location_id
        return AuthenticationBlock(
            user_id=self.config.user_id,
            company_id=self.config.company_id,
            location_id=location,
            session_timestamp=iso_in(created, tz),
            session_timeout=iso_in(expires, tz),
        )

    def _dispatch(self, name: str, el: etree._Element) -> etree._Element | None:
        handlers: dict[str, Callable[[etree._Element], etree._Element | None]] = {
            "readUserFormatting": self.reads.read_user_formatting,
            "query": self.reads.query,
            "readByQuery": self.reads.read_by_query,
            "readMore": self.reads.read_more,
            "read": self.reads.read,
            "lookup": self.reads.lookup,
            "inspect": self.reads.inspect,
            "create": self.writes.create,
            "update": self.writes.update,
            "delete": self.writes.delete,
        }
        handler = handlers.get(name)
        if handler is None:
            if name.startswith("create_"):
                return self.writes.legacy_create(name, el)
            raise FunctionFailed([err("XL03000003", f"Unknown function {name}")])
        return handler(el)

    def _get_api_session(
        self, el: etree._Element, location: str, endpoint_url: str
    ) -> tuple[SandboxSession, etree._Element]:
        location_el = el.find("locationid")
        if location_el is not None:
            location = (location_el.text or "").strip()
        session = self.session_store.open(location, self.clock(), self.config.session_timeout_s)
        self.stats.sessions_opened += 1
        data = etree.Element("data")
        api = etree.SubElement(data, "api")
        etree.SubElement(api, "sessionid").text = session.session_id
        etree.SubElement(api, "endpoint").text = endpoint_url
        etree.SubElement(api, "locationid").text = location
        return session, data
