"""Zendesk tickets into the ledger (polled and pushed), and from the ledger into Intacct."""

import json
import os
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
from connector_pipeline.defs.vendors import zendesk_organizations
from connector_pipeline.staging import StagingStore, TicketLinkRow, TicketRow, UpsertCounts, utcnow
from connector_pipeline.sync.hashing import content_hash
from connector_pipeline.sync.tickets import (
    InvalidTicket,
    PlannedRecord,
    VendorRef,
    plan_ticket_records,
    stage_ticket,
)
from connector_pipeline.zendesk.events import WebhookPayloadError, parse_webhook_payload

LIVE_CURSOR = "zendesk_tickets/live"
QUARANTINE_TICKET = "zendesk_ticket"
QUARANTINE_EVENT = "webhook_event"
QUARANTINE_UNMATCHED = "ticket_unmatched"
QUARANTINE_RECORD = "ticket_record"
BACKFILL_TAG = "dagster/backfill"

TICKET_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=os.environ.get(settings.ENV_TICKETS_START_DATE, settings.DEFAULT_TICKETS_START_DATE),
    # Today's partition exists from midnight on, so the poll schedule can fill it as the
    # day goes.
    end_offset=1,
)


def range_cursor(first_key: str, last_key: str) -> str:
    return f"zendesk_tickets/range/{first_key}..{last_key}"


def _stage_tickets(
    store: StagingStore,
    tickets: list[dict[str, Any]],
    source: str,
    *,
    cursor: tuple[str, str] | None = None,
    processed_inbox: list[int] | None = None,
) -> tuple[UpsertCounts, list[tuple[str, str, Any]]]:
    """Stage tickets; invalid ones go to quarantine, with the payload, in the same
    transaction."""
    rows: list[TicketRow] = []
    bad: list[tuple[str, str, Any]] = []
    for ticket in tickets:
        try:
            rows.append(stage_ticket(ticket, source))
        except InvalidTicket as exc:
            bad.append((str(ticket.get("id")), str(exc), ticket))
    with store.transaction() as conn:
        counts = store.upsert_tickets(rows, cursor=cursor, conn=conn)
        store.quarantine_add_many(QUARANTINE_TICKET, bad, conn=conn)
        if processed_inbox:
            store.mark_inbox_processed(processed_inbox, conn=conn)
    return counts, bad


@dg.asset(
    group_name="tickets",
    partitions_def=TICKET_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=settings.ZENDESK_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"zendesk"},
)
def zendesk_tickets(
    context: dg.AssetExecutionContext,
    zendesk: ZendeskResource,
    staging: StagingResource,
) -> dg.MaterializeResult:
    """Zendesk tickets changed in the selected days, read through the cursor export.

    One run covers the half-open window [first day 00:00 UTC, last day + 1 00:00 UTC) of the
    selected partitions, by `generated_timestamp`. A run whose window reaches the present
    and is not part of a backfill is the live poll: it resumes from the live cursor, so a
    re-run reads only what is new and nothing falls between two days. Any other run reads
    its window from its own resume cursor, and never moves the live cursor.
    """
    store = staging.store
    client = zendesk.client
    calls = CallCounter(client)
    window = context.partition_time_window
    keys = context.partition_key_range
    now = utcnow()
    live = window.end > now and BACKFILL_TAG not in context.run.tags
    cursor_name = LIVE_CURSOR if live else range_cursor(keys.start, keys.end)
    state = json.loads(store.get_cursor(cursor_name) or "null")
    start_time = int(window.start.timestamp())
    export_args: dict[str, Any] = (
        {"cursor": state["cursor"]} if state and state.get("cursor") else {"start_time": start_time}
    )
    end_time = None if live else int(min(window.end, now).timestamp())
    counts = UpsertCounts()
    fetched = deleted = invalid = pages = 0
    with rate_limits_as_retries():
        for page in client.iter_ticket_export(**export_args, end_time=end_time):
            pages += 1
            fetched += len(page.tickets)
            deleted += len(page.deleted_ids)
            next_state = {
                "cursor": page.after_cursor or (state or {}).get("cursor"),
                "window_start": window.start.isoformat(),
            }
            page_counts, bad = _stage_tickets(
                store,
                page.tickets,
                "poll",
                cursor=(cursor_name, json.dumps(next_state)) if next_state["cursor"] else None,
            )
            counts += page_counts
            invalid += len(bad)
            state = next_state
    return dg.MaterializeResult(
        metadata={
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "mode": "live" if live else "range",
            "cursor_name": cursor_name,
            "resumed_from_cursor": "cursor" in export_args,
            "fetched": fetched,
            "new": counts.new,
            "changed": counts.changed,
            "unchanged": counts.unchanged,
            "stale": counts.stale,
            "deleted": deleted,
            "invalid": invalid,
            "pages": pages,
            "api_calls": calls.calls,
        }
    )


@dg.asset(
    group_name="tickets",
    pool=settings.ZENDESK_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"zendesk"},
)
def zendesk_ticket_events(
    context: dg.AssetExecutionContext,
    zendesk: ZendeskResource,
    staging: StagingResource,
) -> dg.MaterializeResult:
    """Ticket changes pushed by Zendesk webhooks, drained from the inbox into the ledger."""
    store = staging.store
    calls = CallCounter(zendesk.client)
    # Drain what was there when the run started; later rows belong to the next run.
    max_id = store.inbox_stats()["max_id"]
    totals = {"events": 0, "staged": 0, "fetched": 0, "ignored": 0, "invalid": 0}
    counts = UpsertCounts()
    while batch := store.claim_inbox(settings.INBOX_DRAIN_BATCH, max_id=max_id):
        totals["events"] += len(batch)
        tickets: dict[int, dict[str, Any]] = {}
        to_fetch: dict[int, list[int]] = {}  # ticket id -> inbox rows waiting for it
        done: list[int] = []
        for row in batch:
            try:
                event = parse_webhook_payload(row.body)
            except WebhookPayloadError as exc:
                body = row.body.decode("utf-8", "replace")
                store.quarantine_add(QUARANTINE_EVENT, str(row.id), str(exc), {"body": body})
                totals["invalid"] += 1
                done.append(row.id)
                continue
            if event.ticket_id is None:
                totals["ignored"] += 1  # not about a ticket
                done.append(row.id)
            elif event.complete:
                have = tickets.get(event.ticket_id)
                if have is None or str(event.ticket.get("updated_at")) >= str(
                    have.get("updated_at")
                ):
                    tickets[event.ticket_id] = event.ticket
                done.append(row.id)
            else:
                to_fetch.setdefault(event.ticket_id, []).append(row.id)
        try:
            if to_fetch:
                with rate_limits_as_retries():
                    fetched = zendesk.client.show_many_tickets(sorted(to_fetch))
                totals["fetched"] += len(fetched)
                for ticket in fetched:
                    tickets[int(ticket["id"])] = ticket
                # A ticket show_many no longer returns was deleted meanwhile; the export
                # reports it as deleted, so these events need nothing more.
                done += [i for ids in to_fetch.values() for i in ids]
            batch_counts, bad = _stage_tickets(
                store, list(tickets.values()), "webhook", processed_inbox=done
            )
        except BaseException as exc:
            store.release_inbox(batch, f"{type(exc).__name__}: {exc}")
            raise
        counts += batch_counts
        totals["staged"] += len(tickets) - len(bad)
        totals["invalid"] += len(bad)
    return dg.MaterializeResult(
        metadata={
            **totals,
            "new": counts.new,
            "changed": counts.changed,
            "stale": counts.stale,
            "inbox_max_id": max_id,
            "api_calls": calls.calls,
        }
    )


@dg.asset(
    group_name="tickets",
    deps=[zendesk_tickets, zendesk_ticket_events, zendesk_organizations],
    pool=settings.INTACCT_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"intacct"},
)
def intacct_ticket_records(
    context: dg.AssetExecutionContext,
    config: SyncRunConfig,
    intacct: IntacctResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Intacct ticket records (a custom object related to VENDOR) for the staged tickets."""
    store = staging.store
    client = intacct.client
    calls = CallCounter(client)
    mapping = connector.mapping().ticket_record
    tickets = store.tickets_to_load(full=config.full_refresh)
    links = store.ticket_links([t["ticket_id"] for t in tickets]) if tickets else {}
    vendors = {org: VendorRef(*ref) for org, ref in store.vendors_by_organization().items()}
    # full_refresh re-plans every staged ticket (after a mapping change, say); those whose
    # record would come out the same as written are still left alone, and counted.
    plan = plan_ticket_records(tickets, links, vendors, mapping)

    with rate_limits_as_retries():
        # Decision 4: before creating, find records a crashed run may already have written.
        unknown = [w.ticket_id for w in plan.writes if w.record_id is None]
        existing = _existing_records(client, mapping, unknown) if unknown else {}
        creates = [w for w in plan.writes if (w.record_id or existing.get(w.ticket_id)) is None]
        to_create = {w.ticket_id for w in creates}
        updates = [w for w in plan.writes if w.ticket_id not in to_create]
        preview = [
            {
                "action": "create" if w.ticket_id in to_create else "update",
                "ticket_id": w.ticket_id,
                "vendor_id": w.vendor_id,
                **w.record,
            }
            for w in plan.writes
        ]
        if config.dry_run:
            return dg.MaterializeResult(
                metadata={
                    "would_create": len(creates),
                    "would_update": len(updates),
                    "unchanged": plan.unchanged,
                    "unmatched": len(plan.unmatched),
                    "api_calls": calls.calls,
                    "dry_run": True,
                    "preview": dg.MetadataValue.md(
                        markdown_table(
                            preview, ["action", "ticket_id", "vendor_id", "status", "subject"]
                        )
                    ),
                }
            )
        outcomes: dict[int, tuple[str | None, str | None]] = {}
        if creates:
            results = client.create(mapping.object_name, [w.record for w in creates])
            for w, r in zip(creates, results, strict=True):
                outcomes[w.ticket_id] = (r.key, None) if r.ok else (None, _errors(r))
        if updates:
            records = [
                {mapping.key_field: w.record_id or existing[w.ticket_id], **w.record}
                for w in updates
            ]
            results = client.update(mapping.object_name, records)
            for w, r in zip(updates, results, strict=True):
                record_id = w.record_id or existing[w.ticket_id]
                outcomes[w.ticket_id] = (record_id, None) if r.ok else (record_id, _errors(r))

    _record_outcomes(store, plan, {w.ticket_id: w for w in plan.writes}, outcomes)
    for ticket_id, reason in list(plan.unmatched.items())[: settings.PREVIEW_ROWS]:
        context.log.info("ticket %s unmatched: %s", ticket_id, reason)
    failed = {t: e for t, (_, e) in outcomes.items() if e}
    for ticket_id, error in list(failed.items())[: settings.PREVIEW_ROWS]:
        context.log.warning("ticket %s not written to Intacct: %s", ticket_id, error)
    return dg.MaterializeResult(
        metadata={
            "created": sum(1 for w in creates if not outcomes[w.ticket_id][1]),
            "updated": sum(1 for w in updates if not outcomes[w.ticket_id][1]),
            "unchanged": plan.unchanged,
            "unmatched": len(plan.unmatched),
            "deleted_before_written": len(plan.deleted_unwritten),
            "failed": len(failed),
            "api_calls": calls.calls,
            "dry_run": False,
            "preview": dg.MetadataValue.md(
                markdown_table(preview, ["action", "ticket_id", "vendor_id", "status", "subject"])
            ),
        }
    )


def _existing_records(client: Any, mapping: Any, ticket_ids: list[int]) -> dict[int, str]:
    found = client.query_in(
        mapping.object_name,
        mapping.ticket_id_field,
        [str(t) for t in ticket_ids],
        [mapping.key_field, mapping.ticket_id_field],
    )
    existing: dict[int, str] = {}
    for record in found:
        ticket = record.get(mapping.ticket_id_field)
        key = record.get(mapping.key_field)
        if ticket not in (None, "") and key not in (None, ""):
            existing.setdefault(int(str(ticket)), str(key))
    return existing


def _errors(result: Any) -> str:
    return (
        "; ".join(
            " ".join(p for p in (e.errorno, e.description, e.description2, e.correction) if p)
            for e in result.errors
        )
        or "unknown failure"
    )


def _record_outcomes(
    store: StagingStore,
    plan: Any,
    writes: dict[int, PlannedRecord],
    outcomes: dict[int, tuple[str | None, str | None]],
) -> None:
    now = utcnow()
    rows: list[TicketLinkRow] = []
    failed: list[tuple[str, str, Any]] = []
    for ticket_id, (record_id, error) in outcomes.items():
        w = writes[ticket_id]
        row: TicketLinkRow = {"ticket_id": ticket_id, "vendor_id": w.vendor_id, "last_error": error}
        if record_id is not None:
            row["record_id"] = record_id
        if error is None:
            row["written_hash"] = w.hash
            row["staged_hash"] = w.staged_hash
            row["written_at"] = now
        else:
            failed.append((str(ticket_id), error, w.record))
        rows.append(row)
    # Deleted before ever being written: remember that nothing is owed to Intacct.
    rows += [
        {
            "ticket_id": t,
            "written_hash": content_hash({"deleted_unwritten": t}),
            "staged_hash": staged,
            "written_at": now,
        }
        for t, staged in plan.deleted_unwritten.items()
    ]
    # Already written as they would be now: only note which staged content that covers.
    rows += [{"ticket_id": t, "staged_hash": staged} for t, staged in plan.settled.items()]
    written = [str(t) for t, (_, error) in outcomes.items() if error is None]
    with store.transaction() as conn:
        store.upsert_ticket_links(rows, conn=conn)
        store.quarantine_add_many(QUARANTINE_RECORD, failed, conn=conn)
        store.quarantine_resolve(QUARANTINE_RECORD, written, conn=conn)
        store.quarantine_add_many(
            QUARANTINE_UNMATCHED,
            [(str(t), reason, None) for t, reason in plan.unmatched.items()],
            conn=conn,
        )
        matched = [str(t) for t in outcomes] + [str(t) for t in plan.deleted_unwritten]
        store.quarantine_resolve(QUARANTINE_UNMATCHED, matched, conn=conn)
