"""Financial standing: Intacct bills and payments into the ledger (StandingRead), and from
the ledger into Zendesk organization fields (StandingPublish).

Why bills and payments, not the vendor's own TOTALDUE: posting or paying a bill does not
move the vendor's WHENMODIFIED (Intacct/intacct-sdk-net#223), and TOTALDUE alone says
nothing of overdue amounts, open counts or payment dates; reading every vendor's TOTALDUE
costs a call per 2,000 vendors every run, changed or not. Reading APBILL / APPYMT by
WHENMODIFIED costs the pages of what changed, and one request on a quiet day (the first
pages of all objects go together). docs/standing.md has the measurements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connector_pipeline import settings
from connector_pipeline.domain import DELETED, OpenItemRow, PaymentRow
from connector_pipeline.flows.ports import Log, OrganizationUpdater, StandingSource
from connector_pipeline.flows.vendors import (
    QUARANTINE_SOURCE,
    Position,
    dump_position,
    load_position,
    resume_point,
)
from connector_pipeline.outcome import WriteOutcome
from connector_pipeline.staging import StagingStore, utcnow
from connector_pipeline.staging.standing import StandingLedger
from connector_pipeline.sync.standing import (
    BANDS,
    DOCUMENT_FIELDS,
    DOCUMENT_OBJECT,
    OPEN_STATES,
    PARTY_FIELD,
    PAYMENT_FIELDS,
    PAYMENT_OBJECT,
    VOID_PAYMENT_STATES,
    InvalidStandingRecord,
    Standing,
    StandingMapping,
    compute_standing,
    document_row,
    fields_hash,
    organization_fields,
    payment_row,
)
from connector_pipeline.sync.vendors import OrganizationMapping, standing_records

QUARANTINE_STANDING = "standing"
CREDIT_LIMIT_KEY = "creditlimit:"
PREVIEW_COLUMNS = ("external_id", "organization_id", "band", "fields")


def standing_cursor(source_object: str) -> str:
    return f"intacct_standing/{source_object}"


def read_objects(parties: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The Intacct objects the standing of `parties` (VENDOR / CUSTOMER) is read from, with
    the fields each read selects."""
    out: dict[str, tuple[str, ...]] = {}
    for party in parties:
        bills, payments = DOCUMENT_OBJECT[party], PAYMENT_OBJECT[party]
        out[bills] = (*DOCUMENT_FIELDS, PARTY_FIELD[bills])
        out[payments] = (*PAYMENT_FIELDS, PARTY_FIELD[payments])
    return out


@dataclass(frozen=True)
class StandingOptions:
    dry_run: bool = False
    full_refresh: bool = False


@dataclass
class StandingReadResult:
    fetched: dict[str, int] = field(default_factory=dict)
    staged: int = 0
    invalid: int = 0
    # After a complete read: staged records Intacct no longer returned, dropped.
    removed: int = 0
    watermarks: dict[str, str] = field(default_factory=dict)
    api_calls: int = 0
    dry_run: bool = False

    def metadata(self) -> dict[str, Any]:
        return {
            "fetched": sum(self.fetched.values()),
            "would_remove" if self.dry_run else "removed": self.removed,
            "fetched_by_object": json.dumps(self.fetched, sort_keys=True),
            "would_stage" if self.dry_run else "staged": self.staged,
            "invalid": self.invalid,
            "watermark": json.dumps(self.watermarks, sort_keys=True),
            "api_calls": self.api_calls,
            "dry_run": self.dry_run,
        }


class StandingRead:
    """One run of intacct_standing: for each object (APBILL and APPYMT; ARINVOICE and
    ARPYMT when customers are configured) read what changed since its watermark, keyset on
    (WHENMODIFIED, RECORDNO), and stage it page by page with the watermark in the same
    transaction. Records that can't be staged are quarantined."""

    def __init__(
        self,
        intacct: StandingSource,
        store: StagingStore,
        parties: Sequence[str],
        options: StandingOptions,
        log: Log,
    ) -> None:
        self.intacct = intacct
        self.store = store
        self.ledger = StandingLedger(store)
        self.objects = read_objects(parties)
        self.options = options
        self.log = log

    def run(self) -> StandingReadResult:
        start = self.intacct.http_calls
        result = StandingReadResult(dry_run=self.options.dry_run)
        positions: dict[str, Position | None] = {}
        requests: dict[str, tuple[Sequence[str], Position | None]] = {}
        for obj, fields in self.objects.items():
            stored = load_position(self.store.get_cursor(standing_cursor(obj)))
            positions[obj] = stored
            after = None if self.options.full_refresh or stored is None else resume_point(stored)
            requests[obj] = (fields, after)
            result.fetched[obj] = 0
        # Only a complete read tells which records are gone from Intacct.
        present: dict[str, set[int]] = {o: set() for o, (_, a) in requests.items() if a is None}
        for obj, page in self.intacct.iter_changed_together(requests):
            if obj in present:
                present[obj].update(n for r in page if (n := _record_no(r)) is not None)
            positions[obj] = self._stage_page(obj, page, positions[obj], result)
        for obj, seen in present.items():
            result.removed += self._remove_absent(obj, seen)
        for obj, position in positions.items():
            if position is None:
                continue
            result.watermarks[obj] = position[0].isoformat()
            if not self.options.dry_run:
                # Touch the cursor even when nothing changed: freshness checks read it.
                self.store.set_cursor(standing_cursor(obj), dump_position(position))
        result.api_calls = self.intacct.http_calls - start
        return result

    def _remove_absent(self, obj: str, seen: set[int]) -> int:
        if self.options.dry_run:
            return 0
        if obj in DOCUMENT_OBJECT.values():
            removed = self.ledger.remove_absent_documents(obj, seen)
        else:
            removed = self.ledger.remove_absent_payments(obj, seen)
        if removed:
            self.log.info("%s: %d staged records gone from Intacct removed", obj, removed)
        return removed

    def _stage_page(
        self,
        obj: str,
        page: list[dict[str, Any]],
        position: Position | None,
        result: StandingReadResult,
    ) -> Position | None:
        documents: list[OpenItemRow] = []
        payments: list[PaymentRow] = []
        bad: list[tuple[str, str, dict[str, Any]]] = []
        for record in page:
            try:
                if obj in DOCUMENT_OBJECT.values():
                    documents.append(document_row(obj, record))
                else:
                    payments.append(payment_row(obj, record))
            except InvalidStandingRecord as exc:
                bad.append((f"{obj}:{record.get('RECORDNO')}", str(exc), record))
        result.fetched[obj] += len(page)
        result.invalid += len(bad)
        # The position comes from the last valid row: a record that failed validation
        # (a RECORDNO that is not a number, say) is quarantined, never parsed here.
        rows: list[OpenItemRow] | list[PaymentRow] = documents or payments
        if rows and rows[-1]["when_modified"] is not None:
            end = (rows[-1]["when_modified"], int(rows[-1]["record_no"]))
            position = max(position, end) if position else end
        result.staged += len(documents) + len(payments)
        if self.options.dry_run:
            return position
        cursor = (standing_cursor(obj), dump_position(position)) if position else None
        with self.store.transaction() as conn:
            if obj in DOCUMENT_OBJECT.values():
                self.ledger.upsert_open_items(documents, cursor=cursor, conn=conn)
            else:
                self.ledger.upsert_payments(payments, cursor=cursor, conn=conn)
            for key, reason, record in bad:
                self.store.quarantine_add(QUARANTINE_SOURCE, key, reason, record, conn=conn)
            staged = [f"{obj}:{r['record_no']}" for r in (*documents, *payments)]
            self.store.quarantine_resolve(QUARANTINE_SOURCE, staged, conn=conn)
        for key, reason, _ in bad:
            self.log.warning("Intacct record %s quarantined: %s", key, reason)
        return position


def _record_no(record: Mapping[str, Any]) -> int | None:
    try:
        return int(str(record.get("RECORDNO")).strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class StandingChange:
    external_id: str
    organization_id: int
    standing: Standing
    fields: dict[str, Any]
    hash: str


@dataclass
class StandingPublishResult:
    changed: int = 0
    unchanged: int = 0
    # Parties with no organization in Zendesk yet (zendesk_organizations creates them).
    not_linked: int = 0
    bands: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BANDS, 0))
    written: dict[str, WriteOutcome] = field(default_factory=dict)
    update_many_calls: int = 0
    api_calls: int = 0
    dry_run: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, WriteOutcome]:
        return {k: o for k, o in sorted(self.written.items()) if not o.ok}

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "would_update" if self.dry_run else "updated": (
                self.changed if self.dry_run else sum(1 for o in self.written.values() if o.ok)
            ),
            "unchanged": self.unchanged,
            "not_linked": self.not_linked,
            **{f"band_{band}": count for band, count in self.bands.items()},
            "api_calls": self.api_calls,
            "dry_run": self.dry_run,
        }
        if not self.dry_run:
            out["failed"] = len(self.failed)
            out["update_many_calls"] = self.update_many_calls
        return out


class StandingPublish:
    """One run of zendesk_standing: compute every linked party's standing as of `today`
    from the ledger, and write the organization fields of those whose fields differ from
    what was last written (by content hash), with update_many in batches of <= 100."""

    def __init__(
        self,
        zendesk: OrganizationUpdater,
        store: StagingStore,
        organization: OrganizationMapping,
        mapping: StandingMapping,
        parties: Sequence[str],
        options: StandingOptions,
        today: date,
        log: Log,
    ) -> None:
        self.zendesk = zendesk
        self.store = store
        self.ledger = StandingLedger(store)
        self.organization = organization
        self.mapping = mapping
        self.parties = parties
        self.options = options
        self.today = today
        self.log = log

    def run(self) -> StandingPublishResult:
        start = self.zendesk.http_calls
        result = StandingPublishResult(dry_run=self.options.dry_run)
        if not self.mapping.enabled:
            self.log.info("standing is not enabled in the mapping file; nothing to publish")
            return result
        changes = self._plan(result)
        result.changed = len(changes)
        result.preview = [
            {
                "external_id": c.external_id,
                "organization_id": c.organization_id,
                "band": c.standing.band,
                "fields": json.dumps(c.fields, sort_keys=True),
            }
            for c in changes
        ]
        if not self.options.dry_run:
            for offset in range(0, len(changes), settings.ZENDESK_WRITE_SLICE):
                self._write(changes[offset : offset + settings.ZENDESK_WRITE_SLICE], result)
            for key, outcome in list(result.failed.items())[: settings.PREVIEW_ROWS]:
                self.log.warning("standing of %s not written: %s", key, outcome.message)
        result.api_calls = self.zendesk.http_calls - start
        return result

    def _plan(self, result: StandingPublishResult) -> list[StandingChange]:
        links = self.store.vendor_links()
        written = {} if self.options.full_refresh else self.ledger.links()
        changes: list[StandingChange] = []
        # One record per organization, by the organization sync's own rule: a record whose
        # external id collides with another's (quarantined there) publishes no standing.
        standing_for, _ = standing_records(self.store.vendors(self.parties), self.organization)
        unreadable: list[tuple[str, str, dict[str, Any]]] = []
        kept = {(v["source_object"], int(v["record_no"])) for v in standing_for}
        for party in self.parties:
            documents = self.ledger.open_items(DOCUMENT_OBJECT[party], OPEN_STATES)
            payments = self.ledger.last_payments(PAYMENT_OBJECT[party], VOID_PAYMENT_STATES)
            for vendor in self.store.vendors([party]):
                if vendor["status"] == DELETED or (party, int(vendor["record_no"])) not in kept:
                    continue
                vendor_id = vendor["vendor_id"]
                external_id = self.organization.external_id(vendor_id).lower()
                link = links.get(external_id)
                org_id = link["organization_id"] if link else None
                if org_id is None:
                    result.not_linked += 1
                    continue
                standing = compute_standing(
                    party,
                    vendor_id,
                    vendor["raw"],
                    documents.get(vendor_id, ()),
                    payments.get(vendor_id, ()),
                    self.today,
                    self.mapping.thresholds,
                )
                result.bands[standing.band] += 1
                raw_limit = vendor["raw"].get("CREDITLIMIT")
                if standing.credit_limit is None and str(raw_limit or "").strip():
                    unreadable.append(
                        (
                            f"{CREDIT_LIMIT_KEY}{party}:{vendor['record_no']}",
                            f"{party} {vendor_id}: CREDITLIMIT {raw_limit!r} is not a number; "
                            "standing is published without a credit limit",
                            dict(vendor["raw"]),
                        )
                    )
                fields = organization_fields(standing, self.mapping)
                digest = fields_hash(fields)
                last = written.get(external_id)
                if last and last["written_hash"] == digest and last["organization_id"] == org_id:
                    result.unchanged += 1
                    continue
                changes.append(StandingChange(external_id, int(org_id), standing, fields, digest))
        if not self.options.dry_run:
            self._quarantine_credit_limits(unreadable)
        return changes

    def _quarantine_credit_limits(self, unreadable: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Nothing is dropped silently: a credit limit that can't be read waits in
        quarantine (and the "over the credit limit" rule can't apply) until it is fixed."""
        current = {key for key, _, _ in unreadable}
        fixed = [
            item.key
            for item in self.store.quarantine_list(QUARANTINE_STANDING)
            if item.key.startswith(CREDIT_LIMIT_KEY) and item.key not in current
        ]
        with self.store.transaction() as conn:
            self.store.quarantine_add_many(QUARANTINE_STANDING, unreadable, conn=conn)
            self.store.quarantine_resolve(QUARANTINE_STANDING, fixed, conn=conn)

    def _write(self, changes: Sequence[StandingChange], result: StandingPublishResult) -> None:
        """One slice: update_many, then its links and quarantine in one transaction."""
        payloads = [{"id": c.organization_id, "organization_fields": c.fields} for c in changes]
        result.update_many_calls += -(-len(payloads) // settings.ZENDESK_MAX_BATCH)
        outcomes = [item.outcome for item in self.zendesk.update_many_organizations(payloads)]
        now = utcnow()
        rows: list[dict[str, Any]] = []
        failed: list[tuple[str, str, Mapping[str, Any]]] = []
        for change, outcome in zip(changes, outcomes, strict=True):
            result.written[change.external_id] = outcome
            row: dict[str, Any] = {
                "external_id": change.external_id,
                "organization_id": change.organization_id,
                "last_error": None if outcome.ok else outcome.message,
            }
            if outcome.ok:
                row.update(written_hash=change.hash, written_at=now)
            else:
                failed.append((change.external_id, outcome.message, change.fields))
            rows.append(row)
        with self.store.transaction() as conn:
            self.ledger.record_writes(rows, conn)
            self.store.quarantine_resolve(
                QUARANTINE_STANDING,
                [r["external_id"] for r in rows if not r["last_error"]],
                conn=conn,
            )
            self.store.quarantine_add_many(QUARANTINE_STANDING, failed, conn=conn)
