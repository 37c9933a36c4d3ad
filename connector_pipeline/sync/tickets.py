"""Zendesk tickets to Intacct ticket records: staging rows, mapping, planning.

Pure functions. A ticket is tied to its vendor through its organization: the
organization's link in vendor_org_links names the vendor, whose RECORDNO fills the
relationship field. A ticket without such a link is unmatched: it is reported, not
written, and written on a later run once the link exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector_pipeline import settings
from connector_pipeline.domain import (
    DELETED,
    GROUP_KEY,
    REQUESTER_KEY,
    SOLVED_AT_KEY,
    SOLVED_STATUSES,
    TicketRow,
)
from connector_pipeline.sync.hashing import content_hash, json_safe
from connector_pipeline.sync.templates import render

# Fields that change without the ticket changing for Intacct's purposes.
_VOLATILE_FIELDS = ("generated_timestamp", "url")


class InvalidTicket(ValueError):
    """A ticket payload that can't be staged, with the reason why."""


def parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _optional_int(value: Any) -> int | None:
    if value in (None, "", "0", 0):
        return None
    return int(value)


# Sideloaded context and the id field that names what it describes.
_CONTEXT_KEYS = ((REQUESTER_KEY, "requester_id"), (GROUP_KEY, "group_id"))


# Statuses that keep a solved time: solved, closed, and deleted after either.
_DONE = SOLVED_STATUSES | {DELETED}


def _status(ticket: Mapping[str, Any]) -> str:
    return str(ticket.get("status") or "").strip().lower()


def derive_solved_at(ticket: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Any:
    """When the ticket was solved, derived from the versions the ledger staged.

    Zendesk's ticket object has no solved time (it is in ticket metrics, a separate
    resource; `include=metric_sets` on the export is UNCONFIRMED), so: the `updated_at`
    of the first staged version whose status is solved or closed, kept by later versions
    while the ticket stays solved, closed or deleted, and cleared when it is reopened. A
    payload that carries its own `solved_at` wins. It is the time the connector first
    saw the ticket solved: when one export covers several updates, that is the newest of
    them, so it can be later than the real solve, never earlier."""
    status = _status(ticket)
    if status not in _DONE:
        return None
    if ticket.get(SOLVED_AT_KEY):
        return ticket[SOLVED_AT_KEY]
    if previous and previous.get(SOLVED_AT_KEY) and _status(previous) in _DONE:
        return previous[SOLVED_AT_KEY]
    return None if status == DELETED else ticket.get("updated_at")


def with_ledger_context(
    ticket: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The ticket as it is staged: what this payload does not say but the staged version
    `previous` (its raw payload) does, carried over, and the derived `solved_at`.

    A webhook event carries the requester's and group's ids but not their names; the
    name staged with the same id is still right, so it is kept rather than cleared (a
    changed id carries nothing over: the next export or fetch brings the new name). A
    payload without the id at all (the trigger template has no `group_id`) says nothing
    about it, so the staged name is kept too."""
    staged = dict(ticket)
    for key, id_field in _CONTEXT_KEYS:
        same = id_field not in staged or (
            staged[id_field] is not None
            and previous is not None
            and previous.get(id_field) == staged[id_field]
        )
        if key not in staged and previous and key in previous and same:
            staged[key] = previous[key]
    solved_at = derive_solved_at(staged, previous)
    if solved_at:
        staged[SOLVED_AT_KEY] = solved_at
    else:
        staged.pop(SOLVED_AT_KEY, None)  # an open ticket carries none (nor a stale one)
    return staged


def lacks_context(ticket: Mapping[str, Any], previous: Mapping[str, Any] | None) -> bool:
    """Whether a ticket names a requester or group whose name neither it nor the staged
    version `previous` gives: a webhook event for a new ticket, or one whose requester
    or group changed. Such a ticket is fetched (with the sideloads) before staging."""
    staged = with_ledger_context(ticket, previous)
    return any(
        staged.get(id_field) is not None and key not in staged for key, id_field in _CONTEXT_KEYS
    )


def stage_ticket(ticket: Mapping[str, Any], source: str) -> TicketRow:
    """A ticket from the export, show_many or a webhook event, as a ledger row. Its
    `version` orders updates: generated_timestamp when present, else updated_at."""
    try:
        ticket_id = int(ticket["id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidTicket(f"ticket id missing or not a number: {ticket.get('id')!r}") from None
    status = str(ticket.get("status") or "").strip().lower()
    if not status:
        raise InvalidTicket(f"ticket {ticket_id} has no status")
    try:
        updated_at = parse_time(ticket.get("updated_at"))
        organization_id = _optional_int(ticket.get("organization_id"))
        generated = ticket.get("generated_timestamp")
        generated = int(generated) if generated not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise InvalidTicket(f"ticket {ticket_id}: {exc}") from None
    if generated is None and updated_at is None:
        raise InvalidTicket(f"ticket {ticket_id} has neither updated_at nor generated_timestamp")
    version = generated if generated is not None else int(updated_at.timestamp())  # type: ignore[union-attr]
    raw = json_safe(dict(ticket))
    return TicketRow(
        ticket_id=ticket_id,
        organization_id=organization_id,
        status=status,
        updated_at=updated_at,
        generated_timestamp=generated,
        version=version,
        raw=raw,
        content_hash=content_hash({k: v for k, v in raw.items() if k not in _VOLATILE_FIELDS}),
        source=source,
    )


DEFAULT_RECORD_FIELDS: dict[str, str] = {
    "name": "ZD-{id}",
    "ticket_id": "{id}",
    "subject": "{subject}",
    "status": "{status}",
    "priority": "{priority}",
    "ticket_type": "{type}",
    "requester_id": "{requester_id}",
    "organization_id": "{organization_id}",
    "zendesk_created_at": "{created_at}",
    "zendesk_updated_at": "{updated_at}",
    # Support context for collections: where the agent opens the ticket, which group
    # works it, and what the requester said of it.
    "ticket_url": "{agent_url}",
    "assignee_group_id": "{group_id}",
    "satisfaction_rating": "{satisfaction_rating.score}",
    "requester_name": "{requester.name}",
    "requester_email": "{requester.email}",
    "assignee_group": "{group.name}",
    # Derived: see derive_solved_at.
    "solved_at": "{solved_at}",
}
# What a deleted ticket still updates: its content is scrubbed by Zendesk, so the record
# keeps the last real subject and only learns that the ticket is gone.
DELETED_RECORD_FIELDS = ("status", "zendesk_updated_at")


@dataclass(frozen=True)
class TicketRecordMapping:
    """Where tickets go in Intacct: the custom object, its fields, and the relationship
    field that ties a record to its VENDOR (filled with the vendor's RECORDNO)."""

    object_name: str = settings.INTACCT_TICKET_OBJECT
    key_field: str = settings.INTACCT_TICKET_KEY_FIELD
    ticket_id_field: str = "ticket_id"
    relationship_field: str = settings.INTACCT_TICKET_VENDOR_FIELD
    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RECORD_FIELDS))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TicketRecordMapping:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys under ticket_record: {', '.join(unknown)}")
        values: dict[str, Any] = {k: str(v) for k, v in data.items() if k != "fields"}
        if "fields" in data:
            values["fields"] = {str(k): str(v) for k, v in (data["fields"] or {}).items()}
        mapping = cls(**values)
        if mapping.ticket_id_field not in mapping.fields:
            raise ValueError(
                f"ticket_record.fields must fill {mapping.ticket_id_field!r}: "
                "existing records are found by it"
            )
        return mapping


_API_URL = re.compile(r"^(https?://[^/]+)/api/v2/tickets/(\d+)(?:\.json)?")


def agent_url(ticket: Mapping[str, Any]) -> str:
    """The ticket in the agent workspace (`https://SUB.zendesk.com/agent/tickets/ID`), made
    from the API `url` the ticket carries, so it names the account's own host."""
    match = _API_URL.match(str(ticket.get("url") or ""))
    return f"{match.group(1)}/agent/tickets/{match.group(2)}" if match else ""


def map_ticket(
    ticket: Mapping[str, Any], vendor_record_no: int, mapping: TicketRecordMapping
) -> dict[str, Any]:
    """The Intacct record for a staged ticket (its raw payload). Templates may use the
    ticket's fields (dotted paths reach nested ones: `{satisfaction_rating.score}`), the
    sideloaded `{requester.name}`, `{requester.email}` and `{group.name}`, the derived
    `{solved_at}` (`with_ledger_context`) and `{agent_url}`."""
    deleted = str(ticket.get("status", "")).lower() == DELETED
    names = DELETED_RECORD_FIELDS if deleted else tuple(mapping.fields)
    extra = {"agent_url": agent_url(ticket)}
    record = {
        name: render(mapping.fields[name], ticket, extra)
        for name in names
        if name in mapping.fields
    }
    record[mapping.ticket_id_field] = str(int(ticket["id"]))
    record[mapping.relationship_field] = str(vendor_record_no)
    return record


@dataclass(frozen=True)
class VendorRef:
    """The Intacct record an organization stands for."""

    source_object: str
    vendor_id: str
    record_no: int
    deleted: bool = False  # gone from Intacct


@dataclass(frozen=True)
class PlannedRecord:
    ticket_id: int
    record: dict[str, Any]
    hash: str
    vendor_id: str
    record_id: str | None  # known Intacct record id: update; None: look up, then create
    staged_hash: str  # content_hash of the staged row this record was mapped from


@dataclass
class TicketRecordPlan:
    writes: list[PlannedRecord] = field(default_factory=list)
    unmatched: dict[int, str] = field(default_factory=dict)
    # Tickets whose record is already written as it would be now: ticket id -> the staged
    # content hash, recorded so the ticket is not considered again until it changes.
    settled: dict[int, str] = field(default_factory=dict)
    # Deleted before they were ever written: nothing to record in Intacct. Ticket id ->
    # staged content hash, as for settled tickets.
    deleted_unwritten: dict[int, str] = field(default_factory=dict)

    @property
    def unchanged(self) -> int:
        return len(self.settled)


def plan_ticket_records(
    tickets: Iterable[Mapping[str, Any]],
    links: Mapping[int, Mapping[str, Any]],
    vendor_by_org: Mapping[int, VendorRef],
    mapping: TicketRecordMapping,
) -> TicketRecordPlan:
    """Decide which staged tickets need an Intacct write.

    `tickets` are staged zendesk_tickets rows, `links` the ticket_record_links rows by
    ticket id, `vendor_by_org` the vendor each linked organization stands for.
    """
    plan = TicketRecordPlan()
    for row in tickets:
        ticket_id = int(row["ticket_id"])
        link = links.get(ticket_id) or {}
        deleted = row["status"] == DELETED
        if deleted and not link.get("record_id"):
            plan.deleted_unwritten[ticket_id] = row["content_hash"]
            continue
        org_id = row.get("organization_id")
        vendor = vendor_by_org.get(int(org_id)) if org_id is not None else None
        if vendor is None:
            plan.unmatched[ticket_id] = (
                "ticket has no organization"
                if org_id is None
                else f"organization {org_id} is not linked to an Intacct vendor"
            )
            continue
        if vendor.deleted:
            plan.unmatched[ticket_id] = (
                f"organization {org_id} stands for {vendor.source_object} {vendor.vendor_id}, "
                "which is no longer in Intacct"
            )
            continue
        if vendor.source_object != "VENDOR":
            plan.unmatched[ticket_id] = (
                f"organization {org_id} stands for {vendor.source_object} {vendor.vendor_id}; "
                "ticket records relate to vendors only"
            )
            continue
        record = map_ticket(row["raw"], vendor.record_no, mapping)
        digest = content_hash(record)
        if link.get("written_hash") == digest and link.get("record_id"):
            plan.settled[ticket_id] = row["content_hash"]
            continue
        plan.writes.append(
            PlannedRecord(
                ticket_id=ticket_id,
                record=record,
                hash=digest,
                vendor_id=vendor.vendor_id,
                record_id=link.get("record_id"),
                staged_hash=row["content_hash"],
            )
        )
    return plan
