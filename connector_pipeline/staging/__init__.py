"""The ledger: staging tables, migrations and the store that reads and writes them."""

from connector_pipeline.staging.store import (
    InboxAppend,
    InboxBacklog,
    InboxEvent,
    InboxRow,
    LedgerError,
    QuarantineItem,
    StagingStore,
    TicketLinkRow,
    UpsertCounts,
    VendorLinkRow,
    utcnow,
)

__all__ = [
    "InboxAppend",
    "InboxBacklog",
    "InboxEvent",
    "InboxRow",
    "LedgerError",
    "QuarantineItem",
    "StagingStore",
    "TicketLinkRow",
    "UpsertCounts",
    "VendorLinkRow",
    "utcnow",
]
