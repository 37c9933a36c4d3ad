"""Intacct vendors into the ledger, and from the ledger into Zendesk organizations."""

import json
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.common import (
    API_RETRY_POLICY,
    CallCounter,
    SyncRunConfig,
    markdown_table,
    rate_limits_as_retries,
)
from connector_pipeline.defs.resources import (
    ConnectorResource,
    IntacctResource,
    StagingResource,
    ZendeskResource,
)
from connector_pipeline.staging import (
    VENDOR_DELETED,
    StagingStore,
    UpsertCounts,
    VendorLinkRow,
    utcnow,
)
from connector_pipeline.staging.hints import HINT_READ_STARTED_CURSOR, IntacctHints
from connector_pipeline.sync.vendors import (
    SOURCE_FIELDS,
    InvalidSourceRecord,
    changed_organizations,
    collision_name,
    desired_organizations,
    is_active,
    mass_deletion,
    needs_lookup,
    plan_organizations,
    reconcile_links,
    record_no_of,
    stage_row,
    vanished,
)

QUARANTINE_SOURCE = "intacct_record"
QUARANTINE_ORGANIZATION = "organization"


def watermark_cursor(source_object: str) -> str:
    return f"intacct_vendors/{source_object}"


def _load_position(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    data = json.loads(value)
    return datetime.fromisoformat(data["when_modified"]), int(data["record_no"])


def resume_point(watermark: tuple[datetime, int]) -> tuple[datetime, int]:
    """Where an incremental read starts: the whole second of the watermark again.

    Intacct timestamps have one-second precision, so a record modified later in that same
    second with a lower RECORDNO sorts before the watermark and would be skipped. Reading
    the second again costs a few records whose unchanged hash costs no Zendesk call.
    """
    return watermark[0] - timedelta(seconds=1), settings.INTACCT_RECORDNO_MAX


def _dump_position(position: tuple[datetime, int]) -> str:
    return json.dumps({"when_modified": position[0].isoformat(), "record_no": position[1]})


@dg.asset(
    group_name="vendors",
    pool=settings.INTACCT_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"intacct"},
)
def intacct_vendors(
    context: dg.AssetExecutionContext,
    config: SyncRunConfig,
    intacct: IntacctResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Intacct vendors (and customers, when configured) changed since the watermark, staged.
    A complete read (the first run, or full_refresh) also marks those gone from Intacct."""
    store = staging.store
    calls = CallCounter(intacct.client)
    # Intacct deliveries that arrived before this read began are covered by it.
    read_started = utcnow()
    if not config.dry_run:
        store.set_cursor(HINT_READ_STARTED_CURSOR, read_started.isoformat())
    counts = UpsertCounts()
    fetched = inactive = invalid = unstamped = deleted = deletions_withheld = 0
    watermarks: dict[str, str] = {}
    preview: list[dict[str, Any]] = []
    with rate_limits_as_retries():
        for source_object in connector.objects():
            name = watermark_cursor(source_object)
            stored = _load_position(store.get_cursor(name))
            after = None if config.full_refresh or stored is None else resume_point(stored)
            # Keyset paging on (WHENMODIFIED, RECORDNO): the watermark advances with each
            # page, in the transaction that stages it, and never moves backwards.
            position = stored
            # Only a complete read tells which records are gone from Intacct.
            present: set[int] | None = set() if after is None else None
            for page in intacct.client.iter_changed(
                source_object, SOURCE_FIELDS[source_object], after
            ):
                if present is not None:
                    present.update(n for r in page if (n := record_no_of(r)) is not None)
                rows, bad = [], []
                for record in page:
                    try:
                        rows.append(stage_row(source_object, record))
                    except InvalidSourceRecord as exc:
                        bad.append((f"{source_object}:{record.get('RECORDNO')}", str(exc), record))
                fetched += len(page)
                inactive += sum(1 for r in rows if not is_active(r["status"]))
                invalid += len(bad)
                last = page[-1]
                if last["WHENMODIFIED"] is None:
                    # A full read's records without a WHENMODIFIED come first, off the keyset.
                    unstamped += len(page)
                else:
                    page_end = (last["WHENMODIFIED"], int(last["RECORDNO"]))
                    if position is None or page_end > position:
                        position = page_end
                if config.dry_run:
                    preview += [
                        {
                            "object": r["source_object"],
                            "id": r["vendor_id"],
                            "name": r["name"],
                            "status": r["status"],
                        }
                        for r in rows
                    ]
                    continue
                with store.transaction() as conn:
                    counts += store.upsert_vendors(
                        rows,
                        cursor=(name, _dump_position(position)) if position else None,
                        conn=conn,
                    )
                    for key, reason, record in bad:
                        store.quarantine_add(QUARANTINE_SOURCE, key, reason, record, conn=conn)
                    store.quarantine_resolve(
                        QUARANTINE_SOURCE,
                        [f"{r['source_object']}:{r['record_no']}" for r in rows],
                        conn=conn,
                    )
                for key, reason, _ in bad:
                    context.log.warning("Intacct record %s quarantined: %s", key, reason)
            if present is not None:
                marked, withheld = _mark_vanished(context, store, config, source_object, present)
                deleted += marked
                deletions_withheld += withheld
            if position is not None:
                watermarks[source_object] = position[0].isoformat()
                if not config.dry_run:
                    # Touch the cursor even when nothing changed: freshness checks read it.
                    store.set_cursor(name, _dump_position(position))
    hints_covered = 0 if config.dry_run else IntacctHints(store).consume_before(read_started)
    metadata: dict[str, Any] = {
        "fetched": fetched,
        "intacct_deliveries_covered": hints_covered,
        "new": counts.new,
        "changed": counts.changed,
        "unchanged": counts.unchanged,
        "inactive": inactive,
        "invalid": invalid,
        "without_whenmodified": unstamped,
        "would_mark_deleted" if config.dry_run else "deleted": deleted,
        "deletions_withheld": deletions_withheld,
        "watermark": json.dumps(watermarks),
        "api_calls": calls.calls,
        "dry_run": config.dry_run,
    }
    if config.dry_run:
        metadata["preview"] = dg.MetadataValue.md(
            markdown_table(preview, ["object", "id", "name", "status"])
        )
    return dg.MaterializeResult(metadata=metadata)


def _mark_vanished(
    context: dg.AssetExecutionContext,
    store: StagingStore,
    config: SyncRunConfig,
    source_object: str,
    present: set[int],
) -> tuple[int, int]:
    """After a complete read: mark the staged records it did not return as deleted, so
    their organizations get the deleted tag. Returns (marked, withheld); a dry run
    reports what it would mark as marked."""
    statuses = store.vendor_statuses(source_object)
    missing = vanished(statuses, present)
    key = f"deletions:{source_object}"
    if config.dry_run:
        return len(missing), 0
    live = sum(1 for status in statuses.values() if status != VENDOR_DELETED)
    reason = None if config.allow_mass_deletion else mass_deletion(len(missing), live)
    if reason is not None:
        context.log.error("%s: %s", source_object, reason)
        store.quarantine_add(QUARANTINE_SOURCE, key, reason, {"record_nos": missing[:1000]})
        return 0, len(missing)
    with store.transaction() as conn:
        marked = store.mark_vendors_deleted(source_object, missing, conn=conn)
        store.quarantine_resolve(QUARANTINE_SOURCE, [key], conn=conn)
    if marked:
        context.log.info("%s: %d records gone from Intacct marked deleted", source_object, marked)
    return marked, 0


@dg.asset(
    group_name="vendors",
    deps=[intacct_vendors],
    pool=settings.ZENDESK_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"zendesk"},
)
def zendesk_organizations(
    context: dg.AssetExecutionContext,
    config: SyncRunConfig,
    zendesk: ZendeskResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Zendesk organizations for the staged vendors, matched by external id."""
    store = staging.store
    client = zendesk.client
    calls = CallCounter(client)
    mapping = connector.mapping()
    desired = desired_organizations(store.vendors(connector.objects()), mapping.organization)
    links = store.vendor_links()
    drift: dict[str, list[str]] = {}
    with rate_limits_as_retries():
        if config.full_refresh:
            # Compare with what Zendesk really holds and write only what differs. Reading the
            # linked organizations costs a call per 100, as rewriting them would, but
            # touches nothing (no update job, no new updated_at on every organization).
            linked = sorted({int(i) for link in links.values() if (i := link["organization_id"])})
            in_zendesk = {int(o["id"]): o for o in client.show_many_organizations(ids=linked)}
            links, drift = reconcile_links(desired, links, in_zendesk)
            for external_id, fields in list(drift.items())[: settings.PREVIEW_ROWS]:
                context.log.info(
                    "organization %s differs in Zendesk: %s", external_id, ", ".join(fields)
                )
        lookup = needs_lookup(changed_organizations(desired, links), links)
        existing = {
            str(org["external_id"]).lower(): org
            for org in (client.show_many_organizations(external_ids=lookup) if lookup else [])
            if org.get("external_id")
        }
        plan = plan_organizations(desired, links, existing)
        preview = [{"action": "create", **p} for p in plan.create] + [
            {"action": "update", **p} for p in plan.update
        ]
        if config.dry_run:
            return dg.MaterializeResult(
                metadata={
                    "would_create": len(plan.create),
                    "would_update": len(plan.update),
                    "unchanged": plan.unchanged,
                    "drifted": len(drift),
                    "api_calls": calls.calls,
                    "dry_run": True,
                    "preview": dg.MetadataValue.md(
                        markdown_table(preview, ["action", "external_id", "id", "name", "tags"])
                    ),
                }
            )
        outcome, renamed_by_zendesk = _write_organizations(client, plan)

    now = utcnow()
    link_rows: list[VendorLinkRow] = []
    for external_id, (org_id, error) in outcome.items():
        org = plan.desired[external_id.lower()]
        row: VendorLinkRow = {
            "external_id": external_id,
            "source_object": org.source_object,
            "vendor_id": org.vendor_id,
            "last_error": error,
        }
        if error is None:
            row["organization_id"] = org_id
            row["written_hash"] = org.hash
            row["written_at"] = now
        elif "RecordNotFound" in error:
            # The linked organization is gone from Zendesk: look it up (or create it)
            # again on the next run instead of failing forever.
            row["organization_id"] = None
        link_rows.append(row)
    with store.transaction() as conn:
        store.upsert_vendor_links(link_rows, conn=conn)
        store.quarantine_resolve(
            QUARANTINE_ORGANIZATION,
            [k for k, (_, err) in outcome.items() if err is None],
            conn=conn,
        )
        store.quarantine_add_many(
            QUARANTINE_ORGANIZATION,
            [
                (k, err, plan.desired[k.lower()].payload)
                for k, (_, err) in outcome.items()
                if err is not None
            ],
            conn=conn,
        )
    failed = sorted(k for k, (_, err) in outcome.items() if err)
    for external_id in failed[: settings.PREVIEW_ROWS]:
        context.log.warning("organization %s not written: %s", external_id, outcome[external_id][1])
    created = sum(1 for p in plan.create if outcome[p["external_id"]][1] is None)
    updated = sum(1 for p in plan.update if outcome[p["external_id"]][1] is None)
    return dg.MaterializeResult(
        metadata={
            "created": created,
            "updated": updated,
            "unchanged": plan.unchanged,
            # full_refresh: organizations edited (or deleted) in Zendesk, written again.
            "drifted": len(drift),
            "failed": len(failed),
            # Names written as "NAME (VENDORID)" in this run: clashes within the vendors,
            # and names Zendesk reported as taken by another organization.
            "name_collisions": sum(
                1 for p in plan.create + plan.update if p["external_id"] in plan.renamed
            )
            + len(renamed_by_zendesk),
            "api_calls": calls.calls,
            "dry_run": False,
            "preview": dg.MetadataValue.md(
                markdown_table(preview, ["action", "external_id", "id", "name", "tags"])
            ),
        }
    )


Outcome = dict[str, tuple[int | None, str | None]]


def _write_organizations(client: Any, plan: Any) -> tuple[Outcome, set[str]]:
    """Create and update in bulk; a name already taken in Zendesk by another organization
    is retried once as "NAME (VENDORID)" (decision 2). Returns, per external id, the
    organization id and the error (None when written), and the external ids renamed
    because Zendesk reported their name as taken."""
    outcome: Outcome = {}
    renamed_by_zendesk: set[str] = set()
    for method, payloads in (
        (client.create_many_organizations, plan.create),
        (client.update_many_organizations, plan.update),
    ):
        if not payloads:
            continue
        results = method(payloads)
        retry: list[dict[str, Any]] = []
        for payload, result in zip(payloads, results, strict=True):
            if result.ok:
                outcome[payload["external_id"]] = (result.id or payload.get("id"), None)
            elif result.duplicate_name:
                vendor_id = plan.desired[payload["external_id"].lower()].vendor_id
                renamed = collision_name(
                    plan.desired[payload["external_id"].lower()].payload["name"], vendor_id
                )
                if payload["name"] != renamed:
                    retry.append({**payload, "name": renamed})
                    renamed_by_zendesk.add(payload["external_id"])
                else:
                    outcome[payload["external_id"]] = (None, _describe(result))
            else:
                outcome[payload["external_id"]] = (None, _describe(result))
        if retry:
            for payload, result in zip(retry, method(retry), strict=True):
                outcome[payload["external_id"]] = (
                    (result.id or payload.get("id"), None)
                    if result.ok
                    else (None, _describe(result))
                )
    return outcome, renamed_by_zendesk


def _describe(result: Any) -> str:
    parts = [p for p in (result.error, result.details) if p]
    return ": ".join(str(p) for p in parts) or "unknown failure"
