"""The ledger: staging tables, migrations and the store that reads and writes them."""

from connector_pipeline.staging.store import (
    VENDOR_DELETED,
    InboxAppend,
    InboxBacklog,
    InboxEvent,
    InboxRow,
    LedgerError,
    QuarantineItem,
    StagingStore,
    TicketLinkRow,
    TicketRow,
    UpsertCounts,
    VendorLinkRow,
    VendorRow,
    utcnow,
    vendor_rank,
)

__all__ = [
    "VENDOR_DELETED",
    "InboxAppend",
    "InboxBacklog",
    "InboxEvent",
    "InboxRow",
    "LedgerError",
    "QuarantineItem",
    "StagingStore",
    "TicketLinkRow",
    "TicketRow",
    "UpsertCounts",
    "VendorLinkRow",
    "VendorRow",
    "utcnow",
    "vendor_rank",
]
