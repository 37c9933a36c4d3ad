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
    # Confirmed writes are counted; only failures are kept per ticket id, so what a run
    # holds follows its failures and one page, not the backlog.
    created: int = 0
    updated: int = 0
    failed: dict[int, WriteOutcome] = field(default_factory=dict)
    # Creates whose answer was lost and that a lookup then found written.
    recovered: int = 0
    # Pages of staged tickets read (settings.INTACCT_TICKET_LOAD_PAGE each).
    pages: int = 0
    api_calls: int = 0
    dry_run: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)

    def count(self, outcomes: Outcomes, *, created: bool) -> None:
        ok = 0
        for w, o in outcomes:
            if o.ok:
                ok += 1
                self.failed.pop(w.ticket_id, None)
            else:
                self.failed[w.ticket_id] = o
        if created:
            self.created += ok
        else:
            self.updated += ok

    def metadata(self) -> dict[str, Any]:
        if self.dry_run:
            return {
                "would_create": self.would_create,
                "would_update": self.would_update,
                "unchanged": self.unchanged,
                "unmatched": self.unmatched,
                "pages": self.pages,
                "api_calls": self.api_calls,
                "dry_run": True,
            }
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "unmatched": self.unmatched,
            "deleted_before_written": self.deleted_before_written,
            "failed": len(self.failed),
            "recovered": self.recovered,
            "pages": self.pages,
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
        *,
        page_size: int = settings.INTACCT_TICKET_LOAD_PAGE,
    ) -> None:
        self.page_size = page_size
        self.intacct = intacct
        self.store = store
        self.writer = ExactlyOnceWriter(intacct, mapping)
        self.mapping = mapping
        self.options = options
        self.log = log

    def run(self) -> TicketRecordResult:
        """Page through the staged tickets to consider (keyset by ticket id): each page is
        planned, looked up and written before the next is read. Only whole write chunks
        are sent per page; the rest (fewer than a chunk) joins the next page's writes, so
        paging costs no partly filled write per page."""
        start = self.intacct.http_calls
        result = TicketRecordResult(dry_run=self.options.dry_run)
        vendors = {
            org: VendorRef(*ref) for org, ref in self.store.vendors_by_organization().items()
        }
        creates: list[PlannedRecord] = []
        updates: list[PlannedRecord] = []
        try:
            after: int | None = None
            while page := self.store.tickets_to_load(
                full=self.options.full_refresh, after=after, limit=self.page_size
            ):
                after = page[-1]["ticket_id"]
                result.pages += 1
                page_creates, page_updates = self._plan_page(page, vendors, result)
                creates += page_creates
                updates += page_updates
                creates, updates = self._write(creates, updates, result, whole_chunks=True)
            self._write(creates, updates, result, whole_chunks=False)
        finally:
            self._report(result)
        result.api_calls = self.intacct.http_calls - start
        return result

    def _plan_page(
        self,
        tickets: list[dict[str, Any]],
        vendors: dict[int, VendorRef],
        result: TicketRecordResult,
    ) -> tuple[list[PlannedRecord], list[PlannedRecord]]:
        """Plan one page, look up its unknown records, settle what needs no write; returns
        the page's (creates, updates)."""
        links = self.store.ticket_links([t["ticket_id"] for t in tickets])
        plan = plan_ticket_records(tickets, links, vendors, self.mapping)
        unknown = [w.ticket_id for w in plan.writes if w.record_id is None]
        creates, updates = self.writer.split(plan.writes, self.writer.existing(unknown))
        result.would_create += len(creates)
        result.would_update += len(updates)
        result.unchanged += plan.unchanged
        result.unmatched += len(plan.unmatched)
        result.deleted_before_written += len(plan.deleted_unwritten)
        room = settings.PREVIEW_ROWS - len(result.preview)
        result.preview += (
            [_preview("create", w) for w in creates[:room]]
            + [_preview("update", w) for w in updates[:room]]
        )[: max(room, 0)]
        for ticket_id, reason in list(plan.unmatched.items())[: settings.PREVIEW_ROWS]:
            self.log.info("ticket %s unmatched: %s", ticket_id, reason)
        if self.options.dry_run:
            return [], []
        self._settle(plan)
        return creates, updates

    def _write(
        self,
        creates: list[PlannedRecord],
        updates: list[PlannedRecord],
        result: TicketRecordResult,
        *,
        whole_chunks: bool,
    ) -> tuple[list[PlannedRecord], list[PlannedRecord]]:
        """Write (only whole chunks when `whole_chunks`); returns what is left to write."""
        size = self.writer.chunk_size
        keep_c = len(creates) % size if whole_chunks else 0
        keep_u = len(updates) % size if whole_chunks else 0
        send_c, left_c = creates[: len(creates) - keep_c], creates[len(creates) - keep_c :]
        send_u, left_u = updates[: len(updates) - keep_u], updates[len(updates) - keep_u :]
        if not send_c and not send_u:
            return left_c, left_u
        created = _Slices(lambda outcomes: self._record(outcomes, result, created=True))
        updated = _Slices(lambda outcomes: self._record(outcomes, result, created=False))
        try:
            result.recovered += self.writer.write(send_c, send_u, created.add, updated.add)
        finally:
            # Also when a write failed: what was confirmed before it stays recorded.
            created.flush()
            updated.flush()
        return left_c, left_u

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

    def _record(self, outcomes: Outcomes, result: TicketRecordResult, *, created: bool) -> None:
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
        result.count(outcomes, created=created)

    def _report(self, result: TicketRecordResult) -> None:
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
