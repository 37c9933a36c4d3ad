"""Staged vendors into Zendesk organizations, matched by external id: plan, look up what
may already exist, create or update in bulk, and record each slice's outcome as it comes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from connector_pipeline import settings
from connector_pipeline.flows.ports import HasOutcome, Log, OrganizationDirectory
from connector_pipeline.outcome import FailureKind, WriteOutcome
from connector_pipeline.staging import StagingStore, VendorLinkRow, utcnow
from connector_pipeline.sync.vendors import (
    OrganizationMapping,
    OrganizationPlan,
    changed_organizations,
    collision_name,
    desired_organizations,
    external_id_collisions,
    is_active,
    lookup_by_export,
    name_key,
    needs_lookup,
    plan_organizations,
    reconcile_links,
)

QUARANTINE_ORGANIZATION = "organization"
QUARANTINE_EXTERNAL_ID = "external_id_collision"
# When (epoch seconds, this machine's clock) this flow last began creating organizations.
CREATES_STARTED_CURSOR = "zendesk_organizations/creates_started"
PREVIEW_COLUMNS = ("action", "external_id", "id", "name", "tags")

BulkWrite = Callable[[Sequence[dict[str, Any]]], Sequence[HasOutcome]]


@dataclass(frozen=True)
class OrganizationSyncOptions:
    dry_run: bool = False
    full_refresh: bool = False


@dataclass
class OrganizationSyncResult:
    would_create: int = 0
    would_update: int = 0
    unchanged: int = 0
    # full_refresh: organizations edited (or deleted) in Zendesk, written again.
    drifted: int = 0
    # Per external id, what each write came to.
    created: dict[str, WriteOutcome] = field(default_factory=dict)
    updated: dict[str, WriteOutcome] = field(default_factory=dict)
    # Names written as "NAME (VENDORID)" in this run: clashes within the vendors, and
    # names Zendesk reported as taken by another organization.
    name_collisions: int = 0
    # Records not written because their external id equals another's but for case; each
    # is in quarantine (QUARANTINE_EXTERNAL_ID) with a reason naming both records.
    external_id_collisions: int = 0
    # How what may already exist was looked up: "none", "show_many" or "export".
    lookup: str = "none"
    api_calls: int = 0
    dry_run: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, WriteOutcome]:
        both = {**self.created, **self.updated}
        return {key: o for key, o in sorted(both.items()) if not o.ok}

    def metadata(self) -> dict[str, Any]:
        common = {
            "unchanged": self.unchanged,
            "drifted": self.drifted,
            "external_id_collisions": self.external_id_collisions,
            "lookup": self.lookup,
        }
        if self.dry_run:
            return {
                "would_create": self.would_create,
                "would_update": self.would_update,
                **common,
                "api_calls": self.api_calls,
                "dry_run": True,
            }
        return {
            "created": sum(1 for o in self.created.values() if o.ok),
            "updated": sum(1 for o in self.updated.values() if o.ok),
            **common,
            "failed": len(self.failed),
            "name_collisions": self.name_collisions,
            "api_calls": self.api_calls,
            "dry_run": False,
        }


class OrganizationSync:
    """One run of zendesk_organizations.

    Exactly-once (DESIGN.md decision 4): a record with no linked organization is looked
    up by external id before anything is created, so a write whose answer was lost (the
    step fails, Dagster retries it) is found and linked, never created twice. Slices of
    `settings.ZENDESK_WRITE_SLICE` are written and recorded one after another, so a
    failure late in a run keeps every confirmed write before it.
    """

    def __init__(
        self,
        zendesk: OrganizationDirectory,
        store: StagingStore,
        mapping: OrganizationMapping,
        objects: Sequence[str],
        options: OrganizationSyncOptions,
        log: Log,
    ) -> None:
        self.zendesk = zendesk
        self.store = store
        self.mapping = mapping
        self.objects = objects
        self.options = options
        self.log = log

    def run(self) -> OrganizationSyncResult:
        start = self.zendesk.http_calls
        result = OrganizationSyncResult(dry_run=self.options.dry_run)
        plan = self._plan(result)
        result.would_create, result.would_update = len(plan.create), len(plan.update)
        result.unchanged = plan.unchanged
        result.preview = [{"action": "create", **p} for p in plan.create] + [
            {"action": "update", **p} for p in plan.update
        ]
        if not self.options.dry_run:
            result.name_collisions = sum(
                1 for p in plan.create + plan.update if p["external_id"] in plan.renamed
            )
            if plan.create:
                # Before the first create: a pass over the organizations that starts soon
                # after may not show them yet (see _find_existing).
                self.store.set_cursor(CREATES_STARTED_CURSOR, repr(time.time()))
            self._write(
                plan, self.zendesk.create_many_organizations, plan.create, result.created, result
            )
            self._write(
                plan, self.zendesk.update_many_organizations, plan.update, result.updated, result
            )
            for external_id, outcome in list(result.failed.items())[: settings.PREVIEW_ROWS]:
                self.log.warning("organization %s not written: %s", external_id, outcome.message)
        result.api_calls = self.zendesk.http_calls - start
        return result

    def _plan(self, result: OrganizationSyncResult) -> OrganizationPlan:
        staged = self.store.vendors(self.objects)
        desired = desired_organizations(staged, self.mapping)
        self._quarantine_collisions(staged, result)
        links = self.store.vendor_links()
        if self.options.full_refresh:
            # Compare with what Zendesk really holds and write only what differs. Reading
            # the linked organizations costs a call per 100, as rewriting them would, but
            # touches nothing (no update job, no new updated_at on every organization).
            linked = sorted({int(i) for link in links.values() if (i := link["organization_id"])})
            in_zendesk = {int(o["id"]): o for o in self.zendesk.show_many_organizations(ids=linked)}
            links, drift = reconcile_links(desired, links, in_zendesk)
            result.drifted = len(drift)
            for external_id, fields in list(drift.items())[: settings.PREVIEW_ROWS]:
                self.log.info(
                    "organization %s differs in Zendesk: %s", external_id, ", ".join(fields)
                )
        lookup = needs_lookup(changed_organizations(desired, links), links)
        found, taken_names = self._find_existing(lookup, result)
        existing = {str(o["external_id"]).lower(): o for o in found if o.get("external_id")}
        return plan_organizations(desired, links, existing, taken_names)

    def _find_existing(
        self, lookup: list[str], result: OrganizationSyncResult
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """What Zendesk already holds for these external ids, by the cheaper of two
        lookups (sync.vendors.lookup_by_export): `show_many` when few records need one,
        else one pass over the account's organizations, after a `count` (one call) to
        price it. Neither misses an organization, with one exception the pass guards
        against: the export leaves out the last minute, so when our own creates started
        within ZENDESK_EXPORT_BLIND_S of the pass (a crashed run retried at once), what
        the pass did not find is looked up by `show_many` as well. The pass also returns
        the names every organization holds (name_key -> its lower-case external id), so
        creates avoid names already taken; show_many returns None there."""
        if not lookup:
            return [], None
        if len(lookup) <= settings.ZENDESK_MAX_BATCH * settings.ZENDESK_LOOKUP_EXPORT_MIN_CALLS:
            result.lookup = "show_many"
            return self.zendesk.show_many_organizations(external_ids=lookup), None
        if not lookup_by_export(len(lookup), self.zendesk.count_organizations()):
            result.lookup = "show_many"
            return self.zendesk.show_many_organizations(external_ids=lookup), None
        result.lookup = "export"
        wanted = {e.lower() for e in lookup}
        pass_started = time.time()
        found: list[dict[str, Any]] = []
        taken_names: dict[str, str] = {}
        for page in self.zendesk.iter_organization_export(start_time=0):
            for o in page.organizations:
                external_id = str(o.get("external_id") or "").lower()
                taken_names[name_key(str(o.get("name") or ""))] = external_id
                if external_id in wanted:
                    found.append(o)
        creates_started = self.store.get_cursor(CREATES_STARTED_CURSOR)
        if creates_started and float(creates_started) >= (
            pass_started - settings.ZENDESK_EXPORT_BLIND_S
        ):
            seen = {str(o["external_id"]).lower() for o in found}
            unseen = [e for e in lookup if e.lower() not in seen]
            found += self.zendesk.show_many_organizations(external_ids=unseen) if unseen else []
        return found, taken_names

    def _quarantine_collisions(
        self, staged: Sequence[Mapping[str, Any]], result: OrganizationSyncResult
    ) -> None:
        """Nothing is dropped silently (decision 11): a record left out because its external
        id equals another's but for case waits in quarantine, naming both, until one of
        them is renamed or deleted in Intacct; then its entry is resolved."""
        active = [v for v in staged if is_active(v["status"])]
        collisions = external_id_collisions(active, self.mapping)
        result.external_id_collisions = len(collisions)
        for collision in collisions[: settings.PREVIEW_ROWS]:
            self.log.warning("%s", collision.reason)
        if self.options.dry_run:
            return
        entries = [(f"{c.source_object}:{c.record_no}", c.reason, asdict(c)) for c in collisions]
        current = {key for key, _, _ in entries}
        settled = [
            item.key
            for item in self.store.quarantine_list(QUARANTINE_EXTERNAL_ID)
            if item.key not in current
        ]
        with self.store.transaction() as conn:
            self.store.quarantine_add_many(QUARANTINE_EXTERNAL_ID, entries, conn=conn)
            self.store.quarantine_resolve(QUARANTINE_EXTERNAL_ID, settled, conn=conn)

    def _write(
        self,
        plan: OrganizationPlan,
        method: BulkWrite,
        payloads: list[dict[str, Any]],
        into: dict[str, WriteOutcome],
        result: OrganizationSyncResult,
    ) -> None:
        size = settings.ZENDESK_WRITE_SLICE
        for start in range(0, len(payloads), size):
            written = self._write_slice(plan, method, payloads[start : start + size], result)
            self._record(plan, written)
            into.update({external_id: o for external_id, (o, _) in written.items()})

    def _write_slice(
        self,
        plan: OrganizationPlan,
        method: BulkWrite,
        payloads: Sequence[dict[str, Any]],
        result: OrganizationSyncResult,
    ) -> dict[str, tuple[WriteOutcome, dict[str, Any]]]:
        """Write, then retry once as "NAME (VENDORID)" what Zendesk reported as a name
        already taken by another organization (decision 2)."""
        written: dict[str, tuple[WriteOutcome, dict[str, Any]]] = {}
        retry: list[dict[str, Any]] = []
        for payload, item in zip(payloads, method(payloads), strict=True):
            outcome = item.outcome
            renamed = _collision_rename(plan, payload)
            if outcome.kind is FailureKind.DUPLICATE_NAME and payload["name"] != renamed:
                retry.append({**payload, "name": renamed})
            else:
                written[payload["external_id"]] = (outcome, payload)
        result.name_collisions += len(retry)
        if retry:
            for payload, item in zip(retry, method(retry), strict=True):
                written[payload["external_id"]] = (item.outcome, payload)
        return written

    def _record(
        self, plan: OrganizationPlan, written: dict[str, tuple[WriteOutcome, dict[str, Any]]]
    ) -> None:
        """Links and quarantine for one slice, in one transaction."""
        now = utcnow()
        rows = [_link_row(plan, key, o, p, now) for key, (o, p) in written.items()]
        failed = [
            (key, o.message, plan.desired[key.lower()].payload)
            for key, (o, _) in written.items()
            if not o.ok
        ]
        with self.store.transaction() as conn:
            self.store.upsert_vendor_links(rows, conn=conn)
            self.store.quarantine_resolve(
                QUARANTINE_ORGANIZATION, [k for k, (o, _) in written.items() if o.ok], conn=conn
            )
            self.store.quarantine_add_many(QUARANTINE_ORGANIZATION, failed, conn=conn)


def _collision_rename(plan: OrganizationPlan, payload: dict[str, Any]) -> str:
    org = plan.desired[payload["external_id"].lower()]
    return collision_name(org.payload["name"], org.vendor_id)


def _link_row(
    plan: OrganizationPlan,
    external_id: str,
    outcome: WriteOutcome,
    payload: dict[str, Any],
    now: datetime,
) -> VendorLinkRow:
    org = plan.desired[external_id.lower()]
    row: VendorLinkRow = {
        "external_id": external_id,
        "source_object": org.source_object,
        "vendor_id": org.vendor_id,
        "last_error": None if outcome.ok else outcome.message,
    }
    if outcome.ok:
        org_id = outcome.id or payload.get("id")
        row["organization_id"] = int(org_id) if org_id is not None else None
        row["written_hash"] = org.hash
        row["written_at"] = now
    elif outcome.kind is FailureKind.NOT_FOUND:
        # The linked organization is gone from Zendesk: look it up (or create it) again
        # on the next run instead of failing forever.
        row["organization_id"] = None
    return row
