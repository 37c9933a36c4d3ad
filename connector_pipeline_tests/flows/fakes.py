"""In-memory fakes of the Protocols the flows take (flows/ports.py): small, honest
models of what Intacct and Zendesk do with the calls, with switches for failures."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector_pipeline.intacct import IntacctWriteOutcomeUnknown
from connector_pipeline.outcome import FailureKind, WriteOutcome
from connector_pipeline.zendesk import OrganizationExportPage, TicketExportPage, ZendeskServerError


@dataclass(frozen=True)
class Item:
    """A per-record write result, as both clients hand back."""

    outcome: WriteOutcome


class Log:
    """Collects what a flow reports, by level."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {"info": [], "warning": [], "error": []}

    def info(self, msg: str, *args: Any) -> None:
        self.lines["info"].append(msg % args)

    def warning(self, msg: str, *args: Any) -> None:
        self.lines["warning"].append(msg % args)

    def error(self, msg: str, *args: Any) -> None:
        self.lines["error"].append(msg % args)


class _Calls:
    def __init__(self) -> None:
        self.http_calls = 0
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.http_calls += 1
        self.calls.append(name)


class FakeIntacct(_Calls):
    """Vendors to read, and a custom object of ticket records to query, create, update.

    `lose_answers`: the next N create/update calls are carried out and their answer is
    lost (IntacctWriteOutcomeUnknown); `drop_creates`: the next N creates are lost on the
    way, never carried out, and their answer is just as unknown. A record whose subject
    is "REJECT" is refused as invalid; an update of an unknown key as not found.
    """

    def __init__(self, page_size: int = 2) -> None:
        super().__init__()
        self.page_size = page_size
        self.vendors: dict[int, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.lose_answers = 0
        self.drop_creates = 0
        self._ids = itertools.count(1)

    def add_vendor(self, record_no: int, when: datetime | None, **fields: Any) -> None:
        self.vendors[record_no] = {
            "RECORDNO": str(record_no),
            "VENDORID": f"V{record_no}",
            "NAME": f"Vendor {record_no}",
            "STATUS": "active",
            "WHENMODIFIED": when,
            **fields,
        }

    def iter_changed(
        self, object_name: str, fields: Sequence[str], after: tuple[datetime, int] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        # As the real client: records without WHENMODIFIED first (complete reads only),
        # then the keyset (WHENMODIFIED, RECORDNO) strictly after `after`.
        unstamped = [] if after else [v for v in self.vendors.values() if not v["WHENMODIFIED"]]
        stamped = sorted(
            (v for v in self.vendors.values() if v["WHENMODIFIED"]),
            key=lambda v: (v["WHENMODIFIED"], int(v["RECORDNO"])),
        )
        if after is not None:
            stamped = [v for v in stamped if (v["WHENMODIFIED"], int(v["RECORDNO"])) > after]
        for group in (sorted(unstamped, key=lambda v: int(v["RECORDNO"])), stamped):
            for start in range(0, len(group), self.page_size):
                self._call("query")
                yield [dict(v) for v in group[start : start + self.page_size]]
        if not unstamped and not stamped:
            self._call("query")

    def query_in(
        self, object_name: str, field: str, values: Sequence[Any], fields: Sequence[str]
    ) -> list[dict[str, Any]]:
        self._call("query")
        wanted = {str(v) for v in values}
        return [dict(r) for r in self.records.values() if str(r.get(field)) in wanted]

    def _lose(self) -> None:
        if self.lose_answers:
            self.lose_answers -= 1
            raise IntacctWriteOutcomeUnknown("answer lost (fake)")

    def create(self, object_name: str, records: Sequence[Mapping[str, Any]]) -> list[Item]:
        self._call("create")
        if self.drop_creates:
            self.drop_creates -= 1
            raise IntacctWriteOutcomeUnknown("request lost on the way (fake)")
        items = []
        for record in records:
            if record.get("subject") == "REJECT":
                items.append(Item(WriteOutcome.failed(FailureKind.INVALID, "BL01001973 bad")))
                continue
            key = str(next(self._ids))
            self.records[key] = {**record, "id": key}
            self.writes += 1
            items.append(Item(WriteOutcome.written(key)))
        self._lose()
        return items

    def update(self, object_name: str, records: Sequence[Mapping[str, Any]]) -> list[Item]:
        self._call("update")
        items = []
        for record in records:
            key = str(record["id"])
            if key not in self.records:
                message = f"Cannot find record with key '{key}' to update."
                items.append(Item(WriteOutcome.failed(FailureKind.NOT_FOUND, message, key)))
            elif record.get("subject") == "REJECT":
                items.append(Item(WriteOutcome.failed(FailureKind.INVALID, "bad", key)))
            else:
                self.records[key].update(record)
                self.writes += 1
                items.append(Item(WriteOutcome.written(key)))
        self._lose()
        return items

    def for_ticket(self, ticket_id: int) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if str(r["ticket_id"]) == str(ticket_id)]


@dataclass
class FakeZendesk(_Calls):
    """Organizations (unique names and external ids, case-insensitively), the ticket
    export and show_many. `lose_next_create`: the next create_many is carried out and
    then fails without an answer."""

    organizations: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    export_pages: list[TicketExportPage] = field(default_factory=list)
    lose_next_create: bool = False
    export_page_size: int = 1000
    # Organization ids the organization export does not show yet.
    export_blind: set[int] = field(default_factory=set)
    export_calls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        _Calls.__init__(self)
        self._ids = itertools.count(1000)

    def _taken(self, key: str, value: str, but: int | None = None) -> bool:
        folded = " ".join(value.split()).casefold()
        return any(
            " ".join(str(o.get(key) or "").split()).casefold() == folded and i != but
            for i, o in self.organizations.items()
        )

    def show_many_organizations(
        self, *, ids: Sequence[int] | None = None, external_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        self._call("show_many")
        if ids is not None:
            return [dict(self.organizations[i]) for i in ids if i in self.organizations]
        wanted = {e.lower() for e in external_ids or ()}
        return [
            dict(o)
            for o in self.organizations.values()
            if str(o.get("external_id")).lower() in wanted
        ]

    def count_organizations(self) -> int:
        self._call("count")
        return len(self.organizations)

    def iter_organization_export(self, *, start_time: int = 0) -> Iterator[OrganizationExportPage]:
        """Every organization, `export_page_size` a page; like Zendesk's, it leaves out
        those in `export_blind` (changed in the minute before the request)."""
        visible = [
            dict(o) for i, o in sorted(self.organizations.items()) if i not in self.export_blind
        ]
        size = self.export_page_size
        for start in range(0, max(len(visible), 1), size):
            self._call("export_organizations")
            yield OrganizationExportPage(
                visible[start : start + size], int(time.time()), start + size >= len(visible)
            )

    def create_many_organizations(self, organizations: Sequence[Mapping[str, Any]]) -> list[Item]:
        self._call("create_many")
        items = []
        for org in organizations:
            if self._taken("external_id", org["external_id"]):
                items.append(Item(WriteOutcome.failed(FailureKind.CONFLICT, "External ID taken")))
            elif self._taken("name", org["name"]):
                items.append(Item(WriteOutcome.failed(FailureKind.DUPLICATE_NAME, "Name taken")))
            else:
                org_id = next(self._ids)
                self.organizations[org_id] = {**org, "id": org_id}
                items.append(Item(WriteOutcome.written(str(org_id))))
        if self.lose_next_create:
            self.lose_next_create = False
            raise ZendeskServerError("connection reset after the jobs were queued (fake)")
        return items

    def update_many_organizations(self, organizations: Sequence[Mapping[str, Any]]) -> list[Item]:
        self._call("update_many")
        items = []
        for org in organizations:
            org_id = int(org["id"])
            if org_id not in self.organizations:
                items.append(Item(WriteOutcome.failed(FailureKind.NOT_FOUND, "Not found")))
            elif self._taken("name", org["name"], but=org_id):
                failure = WriteOutcome.failed(FailureKind.DUPLICATE_NAME, "Name taken", str(org_id))
                items.append(Item(failure))
            else:
                self.organizations[org_id].update(org)
                items.append(Item(WriteOutcome.written(str(org_id))))
        return items

    def iter_ticket_export(
        self,
        *,
        start_time: int | None = None,
        cursor: str | None = None,
        end_time: int | None = None,
    ) -> Iterator[TicketExportPage]:
        self.export_calls.append({"start_time": start_time, "cursor": cursor, "end_time": end_time})
        for page in self.export_pages:
            self._call("export")
            yield page

    def show_many_tickets(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        self._call("show_many_tickets")
        return [dict(self.tickets[i]) for i in ids if i in self.tickets]
