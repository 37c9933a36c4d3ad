"""Staged tickets into Intacct ticket records: plan, then the one exactly-once path
(look up what may already exist, create the rest, link; look up again when a write's
answer is lost), recording outcomes a slice at a time and whenever a write fails."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from connector_pipeline import settings
from connector_pipeline.flows.ports import HasOutcome, Log, RecordStore
from connector_pipeline.intacct import IntacctWriteOutcomeUnknown
from connector_pipeline.outcome import FailureKind, WriteOutcome
from connector_pipeline.staging import StagingStore, TicketLinkRow, utcnow
from connector_pipeline.sync.hashing import content_hash
from connector_pipeline.sync.tickets import (
    PlannedRecord,
    TicketRecordMapping,
    TicketRecordPlan,
    VendorRef,
    plan_ticket_records,
)

QUARANTINE_UNMATCHED = "ticket_unmatched"
QUARANTINE_RECORD = "ticket_record"
PREVIEW_COLUMNS = ("action", "ticket_id", "vendor_id", "status", "subject")

Outcomes = list[tuple[PlannedRecord, WriteOutcome]]
RecordChunk = Callable[[Outcomes], None]


@dataclass(frozen=True)
class TicketRecordOptions:
    dry_run: bool = False
    # Re-plan every staged ticket (after a mapping change, say); those whose record would
    # come out the same as written are still left alone, and counted.
    full_refresh: bool = False


@dataclass
class TicketRecordResult:
    would_create: int = 0
    would_update: int = 0
    unchanged: int = 0
    unmatched: int = 0
    deleted_before_written: int = 0
    # Per ticket id, what each write came to.
    created: dict[int, WriteOutcome] = field(default_factory=dict)
    updated: dict[int, WriteOutcome] = field(default_factory=dict)
    # Creates whose answer was lost and that a lookup then found written.
    recovered: int = 0
    api_calls: int = 0
    dry_run: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> dict[int, WriteOutcome]:
        both = {**self.created, **self.updated}
        return {t: o for t, o in sorted(both.items()) if not o.ok}

    def metadata(self) -> dict[str, Any]:
        if self.dry_run:
            return {
                "would_create": self.would_create,
                "would_update": self.would_update,
                "unchanged": self.unchanged,
                "unmatched": self.unmatched,
                "api_calls": self.api_calls,
                "dry_run": True,
            }
        return {
            "created": sum(1 for o in self.created.values() if o.ok),
            "updated": sum(1 for o in self.updated.values() if o.ok),
            "unchanged": self.unchanged,
            "unmatched": self.unmatched,
            "deleted_before_written": self.deleted_before_written,
            "failed": len(self.failed),
            "recovered": self.recovered,
            "api_calls": self.api_calls,
            "dry_run": False,
        }


class ExactlyOnceWriter:
    """Decision 4 for Intacct ticket records: records are found by their ticket id field
    (`query` with `in`) before anything is created, so neither a crash between a write and
    its link nor a lost answer ever makes a duplicate. A chunk whose answer was lost
    (IntacctWriteOutcomeUnknown) is looked up again, never resent blindly: what was
    written is linked, the rest created. `record` is called once per settled chunk."""

    def __init__(
        self,
        intacct: RecordStore,
        mapping: TicketRecordMapping,
        *,
        max_rounds: int = settings.INTACCT_WRITE_ROUNDS,
        chunk_size: int = settings.INTACCT_MAX_RECORDS_PER_WRITE,
    ) -> None:
        self.intacct = intacct
        self.mapping = mapping
        self.max_rounds = max_rounds
        self.chunk_size = chunk_size

    def existing(self, ticket_ids: Sequence[int]) -> dict[int, str]:
        """Record ids of the records Intacct already holds for these tickets."""
        if not ticket_ids:
            return {}
        m = self.mapping
        found = self.intacct.query_in(
            m.object_name,
            m.ticket_id_field,
            [str(t) for t in ticket_ids],
            [m.key_field, m.ticket_id_field],
        )
        existing: dict[int, str] = {}
        for record in found:
            ticket, key = record.get(m.ticket_id_field), record.get(m.key_field)
            if ticket not in (None, "") and key not in (None, ""):
                existing.setdefault(int(str(ticket)), str(key))
        return existing

    def split(
        self, writes: Sequence[PlannedRecord], existing: dict[int, str]
    ) -> tuple[list[PlannedRecord], list[PlannedRecord]]:
        """(creates, updates): a write with a known or found record id is an update."""
        creates, updates = [], []
        for w in writes:
            record_id = w.record_id or existing.get(w.ticket_id)
            if record_id is None:
                creates.append(w)
            else:
                updates.append(replace(w, record_id=record_id))
        return creates, updates

    def write(
        self,
        creates: Sequence[PlannedRecord],
        updates: Sequence[PlannedRecord],
        on_created: RecordChunk,
        on_updated: RecordChunk,
    ) -> int:
        """Write; returns how many lost creates a lookup found written. Raises
        IntacctWriteOutcomeUnknown (after recording everything confirmed) when answers
        are still lost after `max_rounds` rounds."""
        recovered = 0
        for _round in range(self.max_rounds):
            lost_creates = self._send(self.intacct.create, creates, on_created)
            # An update carries its key, so sending it again changes nothing twice.
            updates = self._send(self.intacct.update, updates, on_updated)
            found = self.existing([w.ticket_id for w in lost_creates])
            settled = [
                (w, WriteOutcome.written(found[w.ticket_id]))
                for w in lost_creates
                if w.ticket_id in found
            ]
            if settled:
                on_created(settled)
            recovered += len(settled)
            creates = [w for w in lost_creates if w.ticket_id not in found]
            if not creates and not updates:
                return recovered
        raise IntacctWriteOutcomeUnknown(
            f"{len(creates) + len(updates)} {self.mapping.object_name} records still "
            f"unresolved after {self.max_rounds} rounds"
        )

    def _send(
        self,
        method: Callable[[str, Sequence[Any]], Sequence[HasOutcome]],
        writes: Sequence[PlannedRecord],
        record: RecordChunk,
    ) -> list[PlannedRecord]:
        """Send in chunks, recording each as it comes; returns the writes whose answer
        was lost."""
        lost: list[PlannedRecord] = []
        for start in range(0, len(writes), self.chunk_size):
            chunk = writes[start : start + self.chunk_size]
            try:
                results = method(self.mapping.object_name, [self._payload(w) for w in chunk])
            except IntacctWriteOutcomeUnknown:
                lost += chunk
                continue
            record([(w, r.outcome) for w, r in zip(chunk, results, strict=True)])
        return lost

    def _payload(self, w: PlannedRecord) -> dict[str, Any]:
        if w.record_id is None:
            return w.record
        return {self.mapping.key_field: w.record_id, **w.record}


class TicketRecordLoad:
    """One run of intacct_ticket_records."""

    def __init__(
        self,
        intacct: RecordStore,
        store: StagingStore,
        mapping: TicketRecordMapping,
        options: TicketRecordOptions,
        log: Log,
    ) -> None:
        self.intacct = intacct
        self.store = store
        self.writer = ExactlyOnceWriter(intacct, mapping)
        self.mapping = mapping
        self.options = options
        self.log = log

    def run(self) -> TicketRecordResult:
        start = self.intacct.http_calls
        result = TicketRecordResult(dry_run=self.options.dry_run)
        plan = self._plan()
        unknown = [w.ticket_id for w in plan.writes if w.record_id is None]
        creates, updates = self.writer.split(plan.writes, self.writer.existing(unknown))
        result.would_create, result.would_update = len(creates), len(updates)
        result.unchanged, result.unmatched = plan.unchanged, len(plan.unmatched)
        result.deleted_before_written = len(plan.deleted_unwritten)
        result.preview = [_preview("create", w) for w in creates] + [
            _preview("update", w) for w in updates
        ]
        if not self.options.dry_run:
            self._settle(plan)
            created = _Slices(lambda outcomes: self._record(outcomes, result.created))
            updated = _Slices(lambda outcomes: self._record(outcomes, result.updated))
            try:
                result.recovered = self.writer.write(creates, updates, created.add, updated.add)
            finally:
                # Also when a write failed: what was confirmed before it stays recorded.
                created.flush()
                updated.flush()
                self._report(plan, result)
        result.api_calls = self.intacct.http_calls - start
        return result

    def _plan(self) -> TicketRecordPlan:
        tickets = self.store.tickets_to_load(full=self.options.full_refresh)
        links = self.store.ticket_links([t["ticket_id"] for t in tickets]) if tickets else {}
        vendors = {
            org: VendorRef(*ref) for org, ref in self.store.vendors_by_organization().items()
        }
        return plan_ticket_records(tickets, links, vendors, self.mapping)

    def _settle(self, plan: TicketRecordPlan) -> None:
        """What the plan decides without a write, in one transaction: tickets deleted
        before ever being written (nothing is owed to Intacct), tickets already written
        as they would be now (only which staged content that covers), and unmatched
        tickets (quarantined until their organization is linked)."""
        now = utcnow()
        rows: list[TicketLinkRow] = [
            {
                "ticket_id": t,
                "written_hash": content_hash({"deleted_unwritten": t}),
                "staged_hash": staged,
                "written_at": now,
            }
            for t, staged in plan.deleted_unwritten.items()
        ]
        rows += [{"ticket_id": t, "staged_hash": staged} for t, staged in plan.settled.items()]
        matched = [str(w.ticket_id) for w in plan.writes] + [str(t) for t in plan.deleted_unwritten]
        with self.store.transaction() as conn:
            self.store.upsert_ticket_links(rows, conn=conn)
            self.store.quarantine_add_many(
                QUARANTINE_UNMATCHED,
                [(str(t), reason, None) for t, reason in plan.unmatched.items()],
                conn=conn,
            )
            self.store.quarantine_resolve(QUARANTINE_UNMATCHED, matched, conn=conn)

    def _record(self, outcomes: Outcomes, into: dict[int, WriteOutcome]) -> None:
        """One chunk's links and quarantine, in one transaction."""
        now = utcnow()
        rows = [_link_row(w, o, now) for w, o in outcomes]
        failed = [(str(w.ticket_id), o.message, w.record) for w, o in outcomes if not o.ok]
        with self.store.transaction() as conn:
            self.store.upsert_ticket_links(rows, conn=conn)
            self.store.quarantine_add_many(QUARANTINE_RECORD, failed, conn=conn)
            self.store.quarantine_resolve(
                QUARANTINE_RECORD, [str(w.ticket_id) for w, o in outcomes if o.ok], conn=conn
            )
        into.update({w.ticket_id: o for w, o in outcomes})

    def _report(self, plan: TicketRecordPlan, result: TicketRecordResult) -> None:
        for ticket_id, reason in list(plan.unmatched.items())[: settings.PREVIEW_ROWS]:
            self.log.info("ticket %s unmatched: %s", ticket_id, reason)
        for ticket_id, outcome in list(result.failed.items())[: settings.PREVIEW_ROWS]:
            self.log.warning("ticket %s not written to Intacct: %s", ticket_id, outcome.message)


class _Slices:
    """Outcomes handed to `record` a slice at a time (`settings.INTACCT_RECORD_SLICE`)."""

    def __init__(self, record: RecordChunk, size: int = settings.INTACCT_RECORD_SLICE) -> None:
        self.record = record
        self.size = size
        self.pending: Outcomes = []

    def add(self, outcomes: Outcomes) -> None:
        self.pending += outcomes
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            outcomes, self.pending = self.pending, []
            self.record(outcomes)


def _preview(action: str, w: PlannedRecord) -> dict[str, Any]:
    return {"action": action, "ticket_id": w.ticket_id, "vendor_id": w.vendor_id, **w.record}


def _link_row(w: PlannedRecord, outcome: WriteOutcome, now: datetime) -> TicketLinkRow:
    row: TicketLinkRow = {
        "ticket_id": w.ticket_id,
        "vendor_id": w.vendor_id,
        "last_error": None if outcome.ok else outcome.message,
    }
    if outcome.kind is FailureKind.NOT_FOUND:
        # The record is gone from Intacct: the next run looks it up again, then creates it.
        row["record_id"] = None
    elif (record_id := outcome.id or w.record_id) is not None:
        row["record_id"] = record_id
    if outcome.ok:
        row["written_hash"] = w.hash
        row["staged_hash"] = w.staged_hash
        row["written_at"] = now
    return row
