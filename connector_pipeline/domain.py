"""The rows and rules every layer shares, with no dependencies: `sync/` computes them,
`staging/` stores them, `flows/` moves them. Nothing here does I/O."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypedDict

# The one spelling of "gone": a staged vendor a complete read of Intacct no longer returned,
# and a ticket Zendesk reports as deleted.
DELETED = "deleted"
# Ticket statuses after which the work is done; a ticket can be reopened from "solved".
SOLVED_STATUSES = frozenset({"solved", "closed"})
# Keys a staged ticket's raw payload gains beyond Zendesk's ticket object: the sideloaded
# requester ({name, email}) and group ({name}), and the derived solved time.
REQUESTER_KEY = "requester"
GROUP_KEY = "group"
SOLVED_AT_KEY = "solved_at"


class VendorRow(TypedDict):
    """An Intacct vendor (or customer) as the ledger stages it."""

    source_object: str
    record_no: int
    vendor_id: str
    name: str
    status: str
    when_modified: datetime | None
    raw: dict[str, Any]
    content_hash: str


class TicketRow(TypedDict):
    """A Zendesk ticket as the ledger stages it; `version` orders updates."""

    ticket_id: int
    organization_id: int | None
    status: str
    updated_at: datetime | None
    generated_timestamp: int | None
    version: int
    raw: dict[str, Any]
    content_hash: str
    source: str


def vendor_rank(status: str, record_no: int) -> tuple[bool, int]:
    """Which of several staged records with one VENDORID (deleted in Intacct, then used
    again) stands for it: the highest rank, i.e. a record still in Intacct, then the
    newest."""
    return status != DELETED, record_no


class OpenItemRow(TypedDict):
    """An Intacct bill (APBILL) or invoice (ARINVOICE) as the ledger stages it; its state
    says whether it is still open. `total_due` is decimal text, exact on both ledgers."""

    source_object: str
    record_no: int
    party_id: str  # VENDORID / CUSTOMERID
    state: str
    when_due: date | None
    total_due: str
    currency: str
    when_modified: datetime | None


class PaymentRow(TypedDict):
    """An Intacct payment (APPYMT / ARPYMT) as the ledger stages it."""

    source_object: str
    record_no: int
    party_id: str
    state: str
    paid_on: date | None
    amount: str
    when_modified: datetime | None
