"""Zendesk tickets into the ledger: the cursor export for a window of days (the poll),
and the stage step it shares with the webhook drain."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector_pipeline.domain import TicketRow
from connector_pipeline.flows.ports import TicketFeed
from connector_pipeline.staging import StagingStore, UpsertCounts
from connector_pipeline.sync.tickets import InvalidTicket, stage_ticket, with_ledger_context

LIVE_CURSOR = "zendesk_tickets/live"
QUARANTINE_TICKET = "zendesk_ticket"


def range_cursor(first_key: str, last_key: str) -> str:
    return f"zendesk_tickets/range/{first_key}..{last_key}"


@dataclass(frozen=True)
class Staged:
    counts: UpsertCounts
    invalid: int


def stage_tickets(
    store: StagingStore,
    tickets: Iterable[Mapping[str, Any]],
    source: str,
    *,
    cursor: tuple[str, str] | None = None,
    processed_inbox: Sequence[int] = (),
) -> Staged:
    """Stage tickets; invalid ones go to quarantine with their payload, and the cursor
    and the inbox rows they came from are settled, all in one transaction. Each ticket
    is staged with what the ledger's version of it adds (`with_ledger_context`: the
    requester and group a webhook event does not name, the derived solved time)."""
    tickets = list(tickets)
    ids = [i for i in map(_ticket_id, tickets) if i is not None]
    previous = {row["ticket_id"]: row["raw"] for row in store.tickets(ids)} if ids else {}
    rows: list[TicketRow] = []
    bad: list[tuple[str, str, Any]] = []
    for ticket in tickets:
        ticket_id = _ticket_id(ticket)
        try:
            staged = with_ledger_context(
                ticket, previous.get(ticket_id) if ticket_id is not None else None
            )
            rows.append(stage_ticket(staged, source))
        except InvalidTicket as exc:
            bad.append((str(ticket.get("id")), str(exc), ticket))
    with store.transaction() as conn:
        counts = store.upsert_tickets(rows, cursor=cursor, conn=conn)
        store.quarantine_add_many(QUARANTINE_TICKET, bad, conn=conn)
        if processed_inbox:
            store.mark_inbox_processed(list(processed_inbox), conn=conn)
    return Staged(counts, len(bad))


def _ticket_id(ticket: Mapping[str, Any]) -> int | None:
    """The id, or None for a ticket stage_ticket will quarantine."""
    try:
        return int(ticket.get("id"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class TicketWindow:
    """The half-open window [start, end) of the selected days, by generated_timestamp.
    `live`: the window reaches the present and is not a backfill, so the run resumes
    from the live cursor; any other run has its own resume cursor and never moves it."""

    start: datetime
    end: datetime
    cursor_name: str
    live: bool


@dataclass
class TicketPollResult:
    window: TicketWindow
    resumed_from_cursor: bool = False
    fetched: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    deleted: int = 0
    invalid: int = 0
    pages: int = 0
    api_calls: int = 0

    def metadata(self) -> dict[str, Any]:
        return {
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "mode": "live" if self.window.live else "range",
            "cursor_name": self.window.cursor_name,
            "resumed_from_cursor": self.resumed_from_cursor,
            "fetched": self.fetched,
            "new": self.counts.new,
            "changed": self.counts.changed,
            "unchanged": self.counts.unchanged,
            "stale": self.counts.stale,
            "deleted": self.deleted,
            "invalid": self.invalid,
            "pages": self.pages,
            "api_calls": self.api_calls,
        }


def poll_tickets(
    zendesk: TicketFeed, store: StagingStore, window: TicketWindow, now: datetime
) -> TicketPollResult:
    """Read the window through the cursor export, staging page by page with the resume
    cursor in the same transaction."""
    start_calls = zendesk.http_calls
    result = TicketPollResult(window)
    state = json.loads(store.get_cursor(window.cursor_name) or "null") or {}
    result.resumed_from_cursor = bool(state.get("cursor"))
    export = (
        {"cursor": state["cursor"]}
        if result.resumed_from_cursor
        else {"start_time": int(window.start.timestamp())}
    )
    end_time = None if window.live else int(min(window.end, now).timestamp())
    for page in zendesk.iter_ticket_export(**export, end_time=end_time):
        result.pages += 1
        result.fetched += len(page.tickets)
        result.deleted += len(page.deleted_ids)
        state = {
            "cursor": page.after_cursor or state.get("cursor"),
            "window_start": window.start.isoformat(),
        }
        cursor = (window.cursor_name, json.dumps(state)) if state["cursor"] else None
        staged = stage_tickets(store, page.tickets, "poll", cursor=cursor)
        result.counts += staged.counts
        result.invalid += staged.invalid
    result.api_calls = zendesk.http_calls - start_calls
    return result
