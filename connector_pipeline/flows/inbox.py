"""Webhook deliveries from the inbox into the ledger: claim a batch, parse, fetch what
the events do not carry, stage, and settle the batch in the transaction that stages it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connector_pipeline import settings
from connector_pipeline.flows.ports import TicketLookup
from connector_pipeline.flows.tickets import stage_tickets
from connector_pipeline.staging import InboxRow, StagingStore, UpsertCounts
from connector_pipeline.sync.tickets import lacks_context
from connector_pipeline.zendesk.events import WebhookPayloadError, parse_webhook_payload

QUARANTINE_EVENT = "webhook_event"


@dataclass
class InboxDrainResult:
    events: int = 0
    staged: int = 0
    fetched: int = 0
    ignored: int = 0
    invalid: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    inbox_max_id: int = 0
    api_calls: int = 0

    def metadata(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "staged": self.staged,
            "fetched": self.fetched,
            "ignored": self.ignored,
            "invalid": self.invalid,
            "new": self.counts.new,
            "changed": self.counts.changed,
            "stale": self.counts.stale,
            "inbox_max_id": self.inbox_max_id,
            "api_calls": self.api_calls,
        }


@dataclass
class _Batch:
    """What a claimed batch comes to: the newest payload per ticket, the tickets to
    fetch (with the inbox rows waiting for each), and the rows already settled."""

    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    to_fetch: dict[int, list[int]] = field(default_factory=dict)
    done: list[int] = field(default_factory=list)


class InboxDrain:
    """One run of zendesk_ticket_events: drain what was in the inbox when it started
    (later rows belong to the next run)."""

    def __init__(
        self,
        zendesk: TicketLookup,
        store: StagingStore,
        *,
        batch_size: int = settings.INBOX_DRAIN_BATCH,
        lease_seconds: float = settings.INBOX_CLAIM_LEASE_SECONDS,
    ) -> None:
        self.zendesk = zendesk
        self.store = store
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds

    def run(self) -> InboxDrainResult:
        start = self.zendesk.http_calls
        result = InboxDrainResult(inbox_max_id=self.store.inbox_stats()["max_id"])
        while rows := self.store.claim_inbox(
            self.batch_size, lease_seconds=self.lease_seconds, max_id=result.inbox_max_id
        ):
            result.events += len(rows)
            try:
                self._drain(rows, result)
            except BaseException as exc:
                # Give the rows back with the reason, so the next drain retries them.
                self.store.release_inbox(rows, f"{type(exc).__name__}: {exc}")
                raise
        result.api_calls = self.zendesk.http_calls - start
        return result

    def _drain(self, rows: Sequence[InboxRow], result: InboxDrainResult) -> None:
        batch = self._parse(rows, result)
        to_fetch = set(batch.to_fetch) | self._unnamed(batch.tickets)
        if to_fetch:
            # One show_many per 100 tickets, requester and group sideloaded.
            fetched = self.zendesk.show_many_tickets(sorted(to_fetch))
            result.fetched += len(fetched)
            for ticket in fetched:
                # Newest wins: a fetch is normally at least as new as the event.
                _keep_newest(batch.tickets, int(ticket["id"]), ticket)
            # A ticket show_many no longer returns was deleted meanwhile; the export
            # reports it as deleted, so these events need nothing more (and a complete
            # event's own ticket is staged as it came).
            batch.done += [i for ids in batch.to_fetch.values() for i in ids]
        staged = stage_tickets(
            self.store, batch.tickets.values(), "webhook", processed_inbox=batch.done
        )
        result.counts += staged.counts
        result.staged += len(batch.tickets) - staged.invalid
        result.invalid += staged.invalid

    def _unnamed(self, tickets: dict[int, dict[str, Any]]) -> set[int]:
        """Complete events whose requester or group the ledger cannot name (a ticket new
        to it, or a changed requester or group): events carry ids, not names, so these
        are fetched. A ticket whose people are already staged costs no call."""
        if not tickets:
            return set()
        staged = {row["ticket_id"]: row["raw"] for row in self.store.tickets(sorted(tickets))}
        return {i for i, t in tickets.items() if lacks_context(t, staged.get(i))}

    def _parse(self, rows: Sequence[InboxRow], result: InboxDrainResult) -> _Batch:
        batch = _Batch()
        for row in rows:
            try:
                event = parse_webhook_payload(row.body)
            except WebhookPayloadError as exc:
                body = row.body.decode("utf-8", "replace")
                self.store.quarantine_add(QUARANTINE_EVENT, str(row.id), str(exc), {"body": body})
                result.invalid += 1
                batch.done.append(row.id)
            else:
                if event.ticket_id is None:
                    result.ignored += 1  # not about a ticket
                    batch.done.append(row.id)
                elif event.complete:
                    _keep_newest(batch.tickets, event.ticket_id, event.ticket)
                    batch.done.append(row.id)
                else:
                    batch.to_fetch.setdefault(event.ticket_id, []).append(row.id)
        return batch


def _keep_newest(
    tickets: dict[int, dict[str, Any]], ticket_id: int, ticket: dict[str, Any]
) -> None:
    have = tickets.get(ticket_id)
    if have is None or str(ticket.get("updated_at")) >= str(have.get("updated_at")):
        tickets[ticket_id] = ticket
