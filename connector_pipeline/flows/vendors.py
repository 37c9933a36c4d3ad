"""Intacct vendors (and customers) into the ledger: keyset read, stage, quarantine, and
after a complete read, mark what is gone from Intacct."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connector_pipeline import settings
from connector_pipeline.domain import DELETED, VendorRow
from connector_pipeline.flows.ports import Log, VendorSource
from connector_pipeline.staging import StagingStore, UpsertCounts, utcnow
from connector_pipeline.staging.hints import HINT_READ_STARTED_CURSOR, IntacctHints
from connector_pipeline.sync.vendors import (
    SOURCE_FIELDS,
    InvalidSourceRecord,
    is_active,
    mass_deletion,
    record_no_of,
    stage_row,
    vanished,
)

QUARANTINE_SOURCE = "intacct_record"
PREVIEW_COLUMNS = ("object", "id", "name", "status")

Position = tuple[datetime, int]


def watermark_cursor(source_object: str) -> str:
    return f"intacct_vendors/{source_object}"


def load_position(value: str | None) -> Position | None:
    if not value:
        return None
    data = json.loads(value)
    return datetime.fromisoformat(data["when_modified"]), int(data["record_no"])


def dump_position(position: Position) -> str:
    return json.dumps({"when_modified": position[0].isoformat(), "record_no": position[1]})


def resume_point(watermark: Position) -> Position:
    """Where an incremental read starts: the whole second of the watermark again.

    Intacct timestamps have one-second precision, so a record modified later in that same
    second with a lower RECORDNO sorts before the watermark and would be skipped. Reading
    the second again costs a few records whose unchanged hash costs no Zendesk call.
    """
    return watermark[0] - timedelta(seconds=1), settings.INTACCT_RECORDNO_MAX


@dataclass(frozen=True)
class VendorReadOptions:
    dry_run: bool = False
    full_refresh: bool = False
    allow_mass_deletion: bool = False


@dataclass
class VendorReadResult:
    fetched: int = 0
    # Intacct webhook deliveries (hints) that this read covers: received before it began.
    intacct_deliveries_covered: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    inactive: int = 0
    invalid: int = 0
    without_whenmodified: int = 0
    deleted: int = 0  # marked deleted (or, in a dry run, would be)
    deletions_withheld: int = 0
    watermarks: dict[str, str] = field(default_factory=dict)
    api_calls: int = 0
    dry_run: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "intacct_deliveries_covered": self.intacct_deliveries_covered,
            "new": self.counts.new,
            "changed": self.counts.changed,
            "unchanged": self.counts.unchanged,
            "inactive": self.inactive,
            "invalid": self.invalid,
            "without_whenmodified": self.without_whenmodified,
            "would_mark_deleted" if self.dry_run else "deleted": self.deleted,
            "deletions_withheld": self.deletions_withheld,
            "watermark": json.dumps(self.watermarks),
            "api_calls": self.api_calls,
            "dry_run": self.dry_run,
        }


@dataclass
class _Page:
    rows: list[VendorRow]
    bad: list[tuple[str, str, Any]]


def _validate(source_object: str, page: Sequence[Mapping[str, Any]]) -> _Page:
    out = _Page([], [])
    for record in page:
        try:
            out.rows.append(stage_row(source_object, record))
        except InvalidSourceRecord as exc:
            out.bad.append((f"{source_object}:{record.get('RECORDNO')}", str(exc), record))
    return out


class VendorRead:
    """One run of intacct_vendors: for each configured object, read what changed since
    the watermark (everything on a complete read), stage it page by page with the
    watermark in the same transaction, and quarantine records that can't be staged."""

    def __init__(
        self,
        intacct: VendorSource,
        store: StagingStore,
        objects: Sequence[str],
        options: VendorReadOptions,
        log: Log,
    ) -> None:
        self.intacct = intacct
        self.store = store
        self.objects = objects
        self.options = options
        self.log = log

    def run(self) -> VendorReadResult:
        start = self.intacct.http_calls
        result = VendorReadResult(dry_run=self.options.dry_run)
        read_started = utcnow()
        if not self.options.dry_run:
            self.store.set_cursor(HINT_READ_STARTED_CURSOR, read_started.isoformat())
        for source_object in self.objects:
            self._read_object(source_object, result)
        if not self.options.dry_run:
            hints = IntacctHints(self.store)
            result.intacct_deliveries_covered = hints.consume_before(read_started)
        result.api_calls = self.intacct.http_calls - start
        return result

    def _read_object(self, source_object: str, result: VendorReadResult) -> None:
        name = watermark_cursor(source_object)
        stored = load_position(self.store.get_cursor(name))
        after = None if self.options.full_refresh or stored is None else resume_point(stored)
        # Keyset paging on (WHENMODIFIED, RECORDNO): the watermark advances with each page,
        # in the transaction that stages it, and never moves backwards.
        position = stored
        # Only a complete read tells which records are gone from Intacct.
        present: set[int] | None = set() if after is None else None
        for page in self.intacct.iter_changed(source_object, SOURCE_FIELDS[source_object], after):
            if present is not None:
                present.update(n for r in page if (n := record_no_of(r)) is not None)
            position = self._stage_page(source_object, page, position, result)
        if present is not None:
            self._mark_vanished(source_object, present, result)
        if position is not None:
            result.watermarks[source_object] = position[0].isoformat()
            if not self.options.dry_run:
                # Touch the cursor even when nothing changed: freshness checks read it.
                self.store.set_cursor(name, dump_position(position))

    def _stage_page(
        self,
        source_object: str,
        page: list[dict[str, Any]],
        position: Position | None,
        result: VendorReadResult,
    ) -> Position | None:
        checked = _validate(source_object, page)
        result.fetched += len(page)
        result.inactive += sum(1 for r in checked.rows if not is_active(r["status"]))
        result.invalid += len(checked.bad)
        last = page[-1]
        if last["WHENMODIFIED"] is None:
            # A full read's records without a WHENMODIFIED come first, off the keyset.
            result.without_whenmodified += len(page)
        else:
            position = max(position, _end_of(last)) if position else _end_of(last)
        if self.options.dry_run:
            result.preview += [
                {
                    "object": r["source_object"],
                    "id": r["vendor_id"],
                    "name": r["name"],
                    "status": r["status"],
                }
                for r in checked.rows
            ]
            return position
        cursor = (watermark_cursor(source_object), dump_position(position)) if position else None
        with self.store.transaction() as conn:
            result.counts += self.store.upsert_vendors(checked.rows, cursor=cursor, conn=conn)
            for key, reason, record in checked.bad:
                self.store.quarantine_add(QUARANTINE_SOURCE, key, reason, record, conn=conn)
            self.store.quarantine_resolve(
                QUARANTINE_SOURCE,
                [f"{r['source_object']}:{r['record_no']}" for r in checked.rows],
                conn=conn,
            )
        for key, reason, _ in checked.bad:
            self.log.warning("Intacct record %s quarantined: %s", key, reason)
        return position

    def _mark_vanished(
        self, source_object: str, present: set[int], result: VendorReadResult
    ) -> None:
        """After a complete read: mark the staged records it did not return as deleted,
        so their organizations get the deleted tag; withhold a mass disappearance."""
        statuses = self.store.vendor_statuses(source_object)
        missing = vanished(statuses, present)
        if self.options.dry_run:
            result.deleted += len(missing)
            return
        key = f"deletions:{source_object}"
        live = sum(1 for status in statuses.values() if status != DELETED)
        reason = None if self.options.allow_mass_deletion else mass_deletion(len(missing), live)
        if reason is not None:
            self.log.error("%s: %s", source_object, reason)
            self.store.quarantine_add(
                QUARANTINE_SOURCE, key, reason, {"record_nos": missing[:1000]}
            )
            result.deletions_withheld += len(missing)
            return
        with self.store.transaction() as conn:
            marked = self.store.mark_vendors_deleted(source_object, missing, conn=conn)
            self.store.quarantine_resolve(QUARANTINE_SOURCE, [key], conn=conn)
        if marked:
            self.log.info("%s: %d records gone from Intacct marked deleted", source_object, marked)
        result.deleted += marked


def _end_of(record: Mapping[str, Any]) -> Position:
    return record["WHENMODIFIED"], int(record["RECORDNO"])
