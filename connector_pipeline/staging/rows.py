"""The ledger's row and result types, shared by the table modules and their callers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict


def utcnow() -> datetime:
    return datetime.now(UTC)


class VendorLinkRow(TypedDict, total=False):
    external_id: str  # required; folded to lower case on write
    source_object: str
    vendor_id: str
    organization_id: int | None
    written_hash: str | None
    written_at: datetime | None
    last_error: str | None


class TicketLinkRow(TypedDict, total=False):
    ticket_id: int  # required
    record_id: str | None
    vendor_id: str | None
    written_hash: str | None
    staged_hash: str | None  # content_hash of the staged row the write carried
    written_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class UpsertCounts:
    """What an upsert did: rows never seen, rows whose content changed, rows unchanged,
    and (tickets only) rows older than what the ledger already holds."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.new + other.new,
            self.changed + other.changed,
            self.unchanged + other.unchanged,
            self.stale + other.stale,
        )


@dataclass(frozen=True)
class InboxEvent:
    """A verified webhook delivery, ready to be committed to the inbox."""

    body: bytes
    headers: Mapping[str, str]
    invocation_id: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    ticket_id: int | None = None
    received_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class InboxAppend:
    id: int | None  # None when the delivery was a duplicate
    duplicate: bool


@dataclass(frozen=True)
class InboxRow:
    id: int
    invocation_id: str | None
    event_id: str | None
    event_type: str | None
    ticket_id: int | None
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    attempts: int
    claim_token: str | None


@dataclass(frozen=True)
class InboxBacklog:
    """What the inbox holds unprocessed, as the sensor needs it. `mark` names the state of
    the backlog from the rows themselves (the newest pending delivery's own ids, the
    claims made so far and how many rows are free to claim), so it differs between two
    ledgers, and changes when a delivery arrives, a drain gives rows back or a dead
    drain's lease runs out, but never with a restart or a move."""

    pending: int
    claimable: int  # not under a live claim: a drain started now would take them
    attempts: int
    oldest_received_at: datetime | None
    newest_id: int | None
    newest_delivery: str | None

    @property
    def mark(self) -> str:
        return f"{self.newest_delivery}:{self.pending}:{self.claimable}:{self.attempts}"


@dataclass(frozen=True)
class LedgerError:
    """A write or delivery that failed last time it was tried (`last_error` / `error`)."""

    table: str
    key: str
    error: str
    at: datetime | None


@dataclass(frozen=True)
class QuarantineItem:
    kind: str
    key: str
    reason: str
    payload: Any
    attempts: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
