"""What the sandbox Zendesk holds and the rules it enforces, apart from HTTP.

Organizations (unique trimmed case-insensitive names, unique case-insensitive external ids,
ids above 2**32, organization field values checked by `zendesk_org_fields`), the bulk
jobs that write them (queued in `zendesk_jobs`), tickets with the real field set and a
`generated_timestamp`, the incremental exports, and request/write counters (limits in
`zendesk_rate`). All of it is guarded by one lock: FastAPI runs sync handlers in a thread
pool.
"""

from __future__ import annotations

import base64
import calendar
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_pipeline import settings
from connector_pipeline.sandbox.faults import DEFAULT_KINDS
from connector_pipeline.sandbox.zendesk_errors import (
    SandboxInvalid,
    not_found,
    record_invalid,
    record_invalid_status,
    too_many_values,
)
from connector_pipeline.sandbox.zendesk_jobs import JobQueue
from connector_pipeline.sandbox.zendesk_org_fields import OrganizationFields
from connector_pipeline.sandbox.zendesk_people import People
from connector_pipeline.sandbox.zendesk_rate import RateLimiter, max_in_window

FIRST_ORGANIZATION_ID = 6_100_000_000_000
FIRST_USER_ID = 6_130_000_000_000
FIRST_EVENT_ID = 6_164_039_218_714
BRAND_ID = 6_130_830_354_842
TICKET_FORM_ID = 6_130_830_344_474
CUSTOM_STATUS_IDS = {
    "new": 6_130_830_355_738,
    "open": 6_130_892_426_138,
    "pending": 6_130_876_524_698,
    "hold": 6_130_876_524_699,
    "solved": 6_130_876_524_700,
    "closed": 6_130_876_524_700,
    "deleted": 6_130_876_524_700,
}
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_TYPES = ("problem", "incident", "question", "task")
ORGANIZATION_FIELDS = (
    "name",
    "external_id",
    "details",
    "notes",
    "domain_names",
    "tags",
    "organization_fields",
    "group_id",
    "shared_tickets",
    "shared_comments",
)
TICKET_WRITABLE = (
    "subject",
    "description",
    "status",
    "priority",
    "type",
    "organization_id",
    "requester_id",
    "assignee_id",
    "group_id",
    "tags",
    "external_id",
    "due_at",
)


Change = tuple[str, Any, Any]
TicketListener = Callable[[str, dict[str, Any], list[Change]], None]


@dataclass
class ZendeskSandboxConfig:
    subdomain: str = "sandbox"
    account_id: int = 90_000_001
    email: str = "sandbox@example.com"
    api_token: str = "sandbox-api-token"
    # The role of the main credentials (`users/me`); "agent" makes them a non-admin.
    user_role: str = "admin"
    # A non-admin agent: valid credentials that incremental exports and search refuse.
    agent_email: str = "agent@example.com"
    agent_api_token: str = "sandbox-agent-token"
    # OAuth clients: client_id -> secret (None for a public client, which must use PKCE).
    oauth_clients: dict[str, str | None] = field(
        default_factory=lambda: {
            "ml-connector": "sandbox-oauth-secret",
            "ml-connector-public": None,
        }
    )
    oauth_access_ttl_s: float = 7200.0
    oauth_refresh_ttl_s: float = 2_592_000.0
    plan_limit_per_minute: int = 700
    incremental_limit_per_minute: int = settings.ZENDESK_INCREMENTAL_LIMIT_PER_MINUTE
    rate_window_s: float = settings.ZENDESK_RATE_WINDOW_S
    # Body of the account-limit 429: "plain" (as seen live), "json", "edge" or "plain_bare"
    # (plain text without Retry-After).
    rate_limit_body: str = "plain"
    job_delay_s: float = 0.2
    max_jobs_in_flight: int = settings.ZENDESK_MAX_JOBS_IN_FLIGHT
    export_lag_s: float = 60.0
    webhook_url: str | None = None
    webhook_secret: str = "sandbox-webhook-signing-secret"
    webhook_id: str = "01HSANDBOXWEBHOOK00000000000"
    webhook_max_attempts: int = settings.ZENDESK_WEBHOOK_MAX_ATTEMPTS
    webhook_retry_base_s: float = settings.ZENDESK_WEBHOOK_RETRY_BASE_S
    webhook_timeout_s: float = settings.ZENDESK_WEBHOOK_TIMEOUT_S
    seed: int = 42
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = DEFAULT_KINDS
    # Retry-After sent with injected 429 / 503 faults.
    fault_retry_after_s: int = 1

    @classmethod
    def for_plan(cls, plan: str, **overrides: Any) -> ZendeskSandboxConfig:
        """A config at a plan's account limit: team, growth, professional, enterprise,
        enterprise_plus."""
        return cls(plan_limit_per_minute=settings.ZENDESK_PLAN_LIMITS[plan], **overrides)


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def epoch(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def encode_cursor(position: float, ticket_id: int) -> str:
    """Opaque to clients; shaped like the real one (`<timestamp>.0||<id>|`)."""
    return base64.b64encode(f"{position!r}||{ticket_id}|".encode()).decode("ascii")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        text = base64.b64decode(cursor.encode("ascii"), validate=True).decode()
        stamp, _, rest = text.partition("||")
        return float(stamp), int(rest.rstrip("|"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SandboxInvalid(
            400, {"error": "InvalidPaginationParameter", "description": "invalid cursor"}
        ) from exc


class SandboxState:
    def __init__(self, config: ZendeskSandboxConfig, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        # (action, ticket, [(field, previous, current), ...]) for webhook deliveries.
        self.on_ticket_event: TicketListener | None = None
        self.reset()

    # --- bookkeeping ---

    def reset(self) -> None:
        with self.lock:
            self.random = random.Random(self.config.seed)
            self.organizations: dict[int, dict[str, Any]] = {}
            self.org_by_name: dict[str, int] = {}
            self.org_by_external_id: dict[str, int] = {}
            self.next_org_id = FIRST_ORGANIZATION_ID
            self.tickets: dict[int, dict[str, Any]] = {}
            self.positions: dict[int, float] = {}
            self.next_ticket_id = 1
            self.last_event_id = FIRST_EVENT_ID
            self.last_position = 0.0
            self.organization_fields = OrganizationFields(self.lock, self.clock, self.url)
            self.people = People(self.lock, self.url)
            self.job_queue = JobQueue(self.lock, self.clock, self.url, self.random)
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.writes: dict[str, Counter[str]] = {"organization": Counter(), "ticket": Counter()}
            self.scenario_writes: dict[str, Counter[str]] = {
                "organization": Counter(),
                "ticket": Counter(),
            }
            self.limiter = RateLimiter(
                self.lock,
                self.config.plan_limit_per_minute,
                self.config.incremental_limit_per_minute,
                self.config.rate_window_s,
            )

    def reconfigure(self, changes: Mapping[str, Any]) -> None:
        with self.lock:
            for key, value in changes.items():
                if not hasattr(self.config, key):
                    raise SandboxInvalid(400, {"error": "UnknownSetting", "description": key})
                setattr(self.config, key, value)
            self.limiter.configure(
                self.config.plan_limit_per_minute,
                self.config.incremental_limit_per_minute,
                self.config.rate_window_s,
            )

    def stats(self) -> dict[str, Any]:
        with self.lock:
            self.advance_jobs()
            return {
                "requests": dict(self.requests),
                "requests_total": sum(self.requests.values()),
                "responses_by_status": dict(self.statuses),
                "rate_limited": dict(self.limiter.refused),
                "writes": {obj: dict(c) for obj, c in self.writes.items()},
                "scenario_writes": {obj: dict(c) for obj, c in self.scenario_writes.items()},
                "incremental_requests": len(self.limiter.incremental_times),
                "max_incremental_in_window": max_in_window(
                    self.limiter.incremental_times, self.config.rate_window_s
                ),
                "jobs": dict(Counter(job.status for job in self.job_queue.jobs.values())),
                "max_jobs_in_flight_seen": self.job_queue.max_in_flight_seen,
                "organizations": len(self.organizations),
                "tickets": len(self.tickets),
            }

    def take_rate_limit(self, incremental: bool) -> tuple[bool, float]:
        return self.limiter.take(incremental)

    def rate_headers(self) -> dict[str, str]:
        return self.limiter.headers()

    # --- organizations ---

    def url(self, path: str) -> str:
        return f"https://{self.config.subdomain}.zendesk.com/api/v2/{path}.json"

    @staticmethod
    def _name_key(name: Any) -> str:
        return str(name or "").strip().casefold()

    @staticmethod
    def _external_key(external_id: Any) -> str | None:
        if external_id is None or str(external_id) == "":
            return None
        return str(external_id).casefold()

    def _check_organization(self, fields: Mapping[str, Any], own_id: int | None) -> None:
        # Identity before name: which of the two Zendesk reports first when both collide
        # is unconfirmed; this order tells a re-run "it exists" rather than "rename it".
        if "external_id" in fields:
            key = self._external_key(fields.get("external_id"))
            holder = self.org_by_external_id.get(key) if key else None
            if holder is not None and holder != own_id:
                raise record_invalid(
                    "external_id",
                    f"External ID: {fields['external_id']} has already been taken",
                    "DuplicateValue",
                )
        if "name" in fields or own_id is None:
            name = str(fields.get("name") or "").strip()
            if not name:
                raise record_invalid("name", "Name: cannot be blank", "BlankValue")
            holder = self.org_by_name.get(self._name_key(name))
            if holder is not None and holder != own_id:
                raise record_invalid(
                    "name", f"Name: {name} has already been taken", "DuplicateValue"
                )

    def create_organization(
        self, fields: Mapping[str, Any], *, scenario: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            self._check_organization(fields, None)
            org_id = self.next_org_id
            self.next_org_id += 1
            now = iso(self.clock())
            org: dict[str, Any] = {
                "url": self.url(f"organizations/{org_id}"),
                "id": org_id,
                "name": str(fields["name"]).strip(),
                "shared_tickets": False,
                "shared_comments": False,
                "external_id": None,
                "created_at": now,
                "updated_at": now,
                "domain_names": [],
                "details": None,
                "notes": None,
                "group_id": None,
                "tags": [],
                "organization_fields": {},
            }
            for key in ORGANIZATION_FIELDS:
                if key in fields and key not in ("name", "organization_fields"):
                    org[key] = fields[key]
            org["organization_fields"] = self.organization_fields.apply(
                {}, fields.get("organization_fields")
            )
            if org["external_id"] is not None:
                org["external_id"] = str(org["external_id"])
            self.organizations[org_id] = org
            self._index(org)
            (self.scenario_writes if scenario else self.writes)["organization"]["create"] += 1
            return dict(org)

    def _index(self, org: dict[str, Any]) -> None:
        self.org_by_name[self._name_key(org["name"])] = org["id"]
        key = self._external_key(org.get("external_id"))
        if key:
            self.org_by_external_id[key] = org["id"]

    def _unindex(self, org: dict[str, Any]) -> None:
        self.org_by_name.pop(self._name_key(org["name"]), None)
        key = self._external_key(org.get("external_id"))
        if key:
            self.org_by_external_id.pop(key, None)

    def update_organization(self, org_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            org = self.organizations.get(org_id)
            if org is None:
                raise not_found()
            changes = {k: v for k, v in fields.items() if k in ORGANIZATION_FIELDS}
            if "organization_fields" in changes:
                changes["organization_fields"] = self.organization_fields.apply(
                    org.get("organization_fields") or {}, changes["organization_fields"]
                )
            self._check_organization(changes, org_id)
            self._unindex(org)
            for key, value in changes.items():
                org[key] = value.strip() if key == "name" else value
            if org.get("external_id") is not None:
                org["external_id"] = str(org["external_id"])
            org["updated_at"] = iso(self.clock())
            self._index(org)
            self.writes["organization"]["update"] += 1
            return dict(org)

    def delete_organization(self, org_id: int) -> None:
        with self.lock:
            org = self.organizations.pop(org_id, None)
            if org is None:
                raise not_found()
            self._unindex(org)
            self.writes["organization"]["delete"] += 1

    def find_organization(self, *, org_id: Any = None, external_id: Any = None) -> int | None:
        with self.lock:
            if org_id is not None:
                try:
                    if int(org_id) in self.organizations:
                        return int(org_id)
                except (TypeError, ValueError):
                    return None
            key = self._external_key(external_id)
            return self.org_by_external_id.get(key) if key else None

    def create_or_update_organization(self, fields: Mapping[str, Any]) -> tuple[dict, bool]:
        with self.lock:
            existing = self.find_organization(
                org_id=fields.get("id"), external_id=fields.get("external_id")
            )
            if existing is None:
                return self.create_organization(fields), True
            return self.update_organization(existing, fields), False

    def organizations_by(self, *, ids: Iterable[Any] = (), external_ids: Iterable[str] = ()):
        with self.lock:
            self.advance_jobs()
            found: list[dict[str, Any]] = []
            for raw in ids:
                org = self.organizations.get(int(raw))
                if org is not None:
                    found.append(dict(org))
            for external_id in external_ids:
                org_id = self.org_by_external_id.get(str(external_id).casefold())
                if org_id is not None:
                    found.append(dict(self.organizations[org_id]))
            return found

    def search_organizations(self, *, external_id: str | None, name: str | None) -> list:
        with self.lock:
            self.advance_jobs()
            if external_id is not None:
                org_id = self.org_by_external_id.get(str(external_id).casefold())
            else:
                org_id = self.org_by_name.get(self._name_key(name))
            return [dict(self.organizations[org_id])] if org_id is not None else []

    def organization_count(self) -> dict[str, Any]:
        with self.lock:
            self.advance_jobs()
            return {"value": len(self.organizations), "refreshed_at": iso(self.clock())}

    def export_organizations(self, *, start_time: int, per_page: int, base: str) -> dict:
        """Time-based incremental export of organizations, ordered by `updated_at`; like
        the ticket export, a page ends on a whole second (so it can hold more than
        `per_page`), and what changed in the last `export_lag_s` is left out, as Zendesk
        leaves out the minute before the request."""
        with self.lock:
            self.advance_jobs()
            cutoff = self.clock() - self.config.export_lag_s
            ordered = sorted(
                (stamp, org_id)
                for org_id, org in self.organizations.items()
                if start_time <= (stamp := epoch(org["updated_at"])) < cutoff
            )
            page = ordered[:per_page]
            if page:
                last_stamp = page[-1][0]
                page = [entry for entry in ordered if entry[0] <= last_stamp]
                end_time = last_stamp + 1
            else:
                end_time = start_time
            return {
                "organizations": [dict(self.organizations[org_id]) for _, org_id in page],
                "count": len(page),
                "end_of_stream": len(page) == len(ordered),
                "next_page": f"{base}incremental/organizations.json"
                f"?per_page={per_page}&start_time={end_time}",
                "end_time": end_time,
            }

    def organization_list(self) -> list[dict[str, Any]]:
        with self.lock:
            self.advance_jobs()
            return [dict(self.organizations[k]) for k in sorted(self.organizations)]

    # --- bulk jobs ---

    def advance_jobs(self) -> None:
        self.job_queue.advance()

    def submit_job(
        self, job_type: str, verb: str, total: int, apply: Callable[[], list[dict[str, Any]]]
    ) -> dict[str, Any]:
        return self.job_queue.submit(
            job_type,
            verb,
            total,
            apply,
            delay_s=self.config.job_delay_s,
            max_in_flight=self.config.max_jobs_in_flight,
        )

    def job_view(self, job_id: str) -> dict[str, Any]:
        return self.job_queue.view(job_id, self.config.job_delay_s)

    def create_many(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        if len(records) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()

        def apply() -> list[dict[str, Any]]:
            results: list[dict[str, Any]] = []
            for index, record in enumerate(records):
                try:
                    org = self.create_organization(record)
                except SandboxInvalid as exc:
                    results.append(_bulk_failure(index, None, exc, "OrganizationCreateFailed"))
                else:
                    results.append({"status": "Created", "id": org["id"]})
            return results

        return self.submit_job("Bulk Create Organization", "Creating", len(records), apply)

    def update_many(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        if len(records) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()

        def apply() -> list[dict[str, Any]]:
            return [self._bulk_update(i, r.get("id"), r) for i, r in enumerate(records)]

        return self.submit_job("Bulk Update Organization", "Updating", len(records), apply)

    def update_many_same(
        self, ids: list[Any], external_ids: list[str], changes: dict[str, Any]
    ) -> dict[str, Any]:
        keys: list[tuple[str, Any]] = [("id", i) for i in ids] + [
            ("external_id", e) for e in external_ids
        ]
        if len(keys) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()

        def apply() -> list[dict[str, Any]]:
            results = []
            for index, (kind, value) in enumerate(keys):
                org_id = (
                    self.find_organization(org_id=value)
                    if kind == "id"
                    else self.find_organization(external_id=value)
                )
                results.append(self._bulk_update(index, org_id, changes))
            return results

        return self.submit_job("Bulk Update Organization", "Updating", len(keys), apply)

    def _bulk_update(self, index: int, org_id: Any, changes: Mapping[str, Any]) -> dict:
        try:
            if org_id is None:
                raise not_found()
            org = self.update_organization(int(org_id), changes)
        except SandboxInvalid as exc:
            return _bulk_failure(index, org_id, exc, "OrganizationUpdateFailed")
        return {"action": "update", "id": org["id"], "status": "Updated", "success": True}

    def destroy_many(self, ids: list[Any], external_ids: list[str]) -> dict[str, Any]:
        keys = [self.find_organization(org_id=i) for i in ids] + [
            self.find_organization(external_id=e) for e in external_ids
        ]
        if len(keys) > settings.ZENDESK_MAX_BATCH:
            raise too_many_values()

        def apply() -> list[dict[str, Any]]:
            results = []
            for index, org_id in enumerate(keys):
                try:
                    if org_id is None:
                        raise not_found()
                    self.delete_organization(org_id)
                except SandboxInvalid as exc:
                    results.append(_bulk_failure(index, org_id, exc, "OrganizationDeleteFailed"))
                else:
                    results.append(
                        {"action": "delete", "id": org_id, "status": "Deleted", "success": True}
                    )
            return results

        return self.submit_job("Bulk Delete Organization", "Deleting", len(keys), apply)

    # --- tickets ---

    def _next_position(self, at: float | None = None) -> float:
        """Export order: strictly increasing, so a cursor never skips a later change."""
        stamp = self.clock() if at is None else at
        if at is None:
            stamp = max(stamp, self.last_position + 1e-6)
            self.last_position = stamp
        return stamp

    def new_ticket(
        self, fields: Mapping[str, Any], *, at: float | None = None, created: float | None = None
    ) -> dict[str, Any]:
        with self.lock:
            ticket_id = self.next_ticket_id
            self.next_ticket_id += 1
            position = self._next_position(at)
            created_at = iso(created if created is not None else position)
            status = str(fields.get("status") or "new")
            requester = fields.get("requester_id") or FIRST_USER_ID + 1
            subject = str(fields.get("subject") or f"Ticket {ticket_id}")
            ticket: dict[str, Any] = {
                "url": self.url(f"tickets/{ticket_id}"),
                "id": ticket_id,
                "external_id": fields.get("external_id"),
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "created_at": created_at,
                "updated_at": iso(position),
                "type": fields.get("type"),
                "subject": subject,
                "raw_subject": subject,
                "description": str(fields.get("description") or subject),
                "priority": fields.get("priority"),
                "status": status,
                "recipient": None,
                "requester_id": requester,
                "submitter_id": requester,
                "assignee_id": fields.get("assignee_id"),
                "organization_id": fields.get("organization_id"),
                "group_id": fields.get("group_id"),
                "collaborator_ids": [],
                "follower_ids": [],
                "email_cc_ids": [],
                "forum_topic_id": None,
                "problem_id": None,
                "has_incidents": False,
                "is_public": True,
                "due_at": fields.get("due_at"),
                "tags": list(fields.get("tags") or []),
                "custom_fields": [],
                "satisfaction_rating": None,
                "sharing_agreement_ids": [],
                "custom_status_id": CUSTOM_STATUS_IDS.get(status, CUSTOM_STATUS_IDS["open"]),
                "fields": [],
                "followup_ids": [],
                "ticket_form_id": TICKET_FORM_ID,
                "brand_id": BRAND_ID,
                "allow_channelback": False,
                "allow_attachments": True,
                "from_messaging_channel": False,
                "generated_timestamp": int(position),
            }
            self.tickets[ticket_id] = ticket
            self.positions[ticket_id] = position
            return ticket

    def _validate_ticket(self, fields: Mapping[str, Any]) -> None:
        status = fields.get("status")
        if status is not None and status not in TICKET_STATUSES:
            raise record_invalid("status", f"Status: {status} is not valid", "InvalidValue")
        priority = fields.get("priority")
        if priority is not None and priority not in TICKET_PRIORITIES:
            raise record_invalid("priority", f"Priority: {priority} is not valid", "InvalidValue")
        kind = fields.get("type")
        if kind is not None and kind not in TICKET_TYPES:
            raise record_invalid("type", f"Type: {kind} is not valid", "InvalidValue")

    def create_ticket(self, fields: Mapping[str, Any], *, scenario: bool) -> dict[str, Any]:
        body = comment_body(fields)
        if body is not None:
            # The first comment is the description (Zendesk: "use comment to set the
            # description"; fixture ticket_create_201_with_audit.json).
            fields = {**fields, "description": body}
        elif not scenario and not str(fields.get("description") or "").strip():
            raise record_invalid("description", "Description: cannot be blank", "BlankValue")
        with self.lock:
            self._validate_ticket(fields)
            ticket = self.new_ticket(fields)
            (self.scenario_writes if scenario else self.writes)["ticket"]["create"] += 1
            snapshot = dict(ticket)
        self._emit("created", snapshot, [])
        return snapshot

    def update_ticket(
        self, ticket_id: int, fields: Mapping[str, Any], *, scenario: bool
    ) -> dict[str, Any]:
        return self.update_ticket_changes(ticket_id, fields, scenario=scenario)[0]

    def update_ticket_changes(
        self, ticket_id: int, fields: Mapping[str, Any], *, scenario: bool
    ) -> tuple[dict[str, Any], list[Change]]:
        """The ticket after the update, and each (field, previous, current) that changed."""
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None or ticket["status"] == "deleted":
                raise not_found()
            if ticket["status"] == "closed":
                raise record_invalid_status()
            changes = {k: v for k, v in fields.items() if k in TICKET_WRITABLE}
            self._validate_ticket(changes)
            previous = {k: ticket.get(k) for k in changes}
            for key, value in changes.items():
                ticket[key] = list(value) if key == "tags" else value
                if key == "subject":
                    ticket["raw_subject"] = value
            if "status" in changes:
                ticket["custom_status_id"] = CUSTOM_STATUS_IDS[ticket["status"]]
            self._touch(ticket)
            (self.scenario_writes if scenario else self.writes)["ticket"]["update"] += 1
            snapshot = dict(ticket)
            changed = [(k, v, ticket.get(k)) for k, v in previous.items() if v != ticket.get(k)]
        if changed:
            self._emit("updated", snapshot, changed)
        return snapshot, changed

    def next_event_id(self) -> int:
        with self.lock:
            self.last_event_id += 128
            return self.last_event_id

    def delete_ticket(self, ticket_id: int) -> dict[str, Any]:
        """Soft delete, scrubbed as the real service does: the export keeps reporting it."""
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None or ticket["status"] == "deleted":
                raise not_found()
            ticket.update(status="deleted", subject="SCRUBBED", raw_subject="SCRUBBED")
            ticket["description"] = "X"
            self._touch(ticket)
            self.scenario_writes["ticket"]["delete"] += 1
            snapshot = dict(ticket)
        self._emit("deleted", snapshot, [])
        return snapshot

    def _touch(self, ticket: dict[str, Any]) -> None:
        position = self._next_position()
        self.positions[ticket["id"]] = position
        ticket["updated_at"] = iso(position)
        ticket["generated_timestamp"] = int(position)

    def _emit(self, action: str, ticket: dict[str, Any], changes: list[Change]) -> None:
        if self.on_ticket_event is not None:
            self.on_ticket_event(action, ticket, changes)

    def visible_tickets(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(self.tickets[k])
                for k in sorted(self.tickets)
                if self.tickets[k]["status"] != "deleted"
            ]

    def all_tickets(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(self.tickets[k]) for k in sorted(self.tickets)]

    def export_cursor(
        self,
        *,
        start_time: int | None,
        cursor: str | None,
        per_page: int,
        base: str,
        include: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            after = decode_cursor(cursor) if cursor else (float(start_time or 0), 0)
            cutoff = self.clock() - self.config.export_lag_s
            ordered = sorted(
                (position, ticket_id)
                for ticket_id, position in self.positions.items()
                if (position, ticket_id) > after and position < cutoff
            )
            page = ordered[:per_page]
            last = page[-1] if page else after
            after_cursor = encode_cursor(*last)
            tickets = []
            for _, ticket_id in page:
                ticket = dict(self.tickets[ticket_id])
                tickets.append(ticket)
            return {
                "tickets": tickets,
                **self.people.sideloads(tickets, include),
                "after_url": f"{base}incremental/tickets/cursor.json"
                f"?cursor={after_cursor.replace('=', '%3D')}",
                "before_url": None,
                "after_cursor": after_cursor,
                "before_cursor": None,
                "end_of_stream": len(ordered) <= per_page,
            }

    def export_time_based(
        self, *, start_time: int, per_page: int, base: str, include: str | None = None
    ) -> dict[str, Any]:
        """Whole seconds: a page always ends on a complete `generated_timestamp`, so it can
        hold more than `per_page` tickets (seen live: per_page=1 gave 7)."""
        with self.lock:
            cutoff = self.clock() - self.config.export_lag_s
            ordered = sorted(
                (int(position), ticket_id)
                for ticket_id, position in self.positions.items()
                if int(position) >= start_time and position < cutoff
            )
            page = ordered[:per_page]
            if page:
                last_stamp = page[-1][0]
                page = [entry for entry in ordered if entry[0] <= last_stamp]
                end_time = last_stamp + 1
            else:
                end_time = start_time
            tickets = [dict(self.tickets[ticket_id]) for _, ticket_id in page]
            return {
                "tickets": tickets,
                **self.people.sideloads(tickets, include),
                "count": len(page),
                "end_of_stream": len(page) == len(ordered),
                "next_page": f"{base}incremental/tickets.json"
                f"?per_page={per_page}&start_time={end_time}",
                "end_time": end_time,
            }


def comment_body(fields: Mapping[str, Any]) -> str | None:
    comment = fields.get("comment")
    if isinstance(comment, Mapping):
        body = comment.get("body") or comment.get("html_body")
        return None if body is None else str(body)
    return None


def _bulk_failure(index: int, org_id: Any, exc: SandboxInvalid, error: str) -> dict[str, Any]:
    details = exc.body.get("details")
    if isinstance(details, dict):
        first = next(iter(details.values()))[0]["description"]
        # The live service puts two spaces after the field label in bulk job details.
        text = first.replace(": ", ":  ", 1)
    else:
        text = str(exc.body.get("description") or exc.body.get("error"))
    item: dict[str, Any] = {"index": index, "error": error, "details": text}
    if org_id is not None:
        item["id"] = int(org_id)
    return item
