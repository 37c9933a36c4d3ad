"""The ledger: one SQLAlchemy Core table per row of DESIGN.md's ledger table.

Migrations under `migrations/versions` create exactly these tables; a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from connector_pipeline.staging.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Intacct source records (VENDOR, optionally CUSTOMER) as last read.
intacct_vendors = Table(
    "intacct_vendors",
    metadata,
    Column("source_object", String(32), primary_key=True),  # VENDOR | CUSTOMER
    Column("record_no", BigInteger, primary_key=True),  # RECORDNO
    Column("vendor_id", String(128), nullable=False),  # VENDORID / CUSTOMERID
    Column("name", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("when_modified", UTCDateTime, nullable=True),
    Column("raw", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("staged_at", UTCDateTime, nullable=False),
    Index(None, "vendor_id"),
    Index(None, "when_modified"),
)

# Zendesk tickets as last seen, from the incremental export or from webhooks.
zendesk_tickets = Table(
    "zendesk_tickets",
    metadata,
    Column("ticket_id", BigInteger, primary_key=True),
    Column("organization_id", BigInteger, nullable=True),
    Column("status", String(32), nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("generated_timestamp", BigInteger, nullable=True),
    # Ordering key for "latest wins": generated_timestamp when known, else updated_at epoch.
    Column("version", BigInteger, nullable=False),
    Column("raw", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # poll | webhook
    Column("staged_at", UTCDateTime, nullable=False),
    Index(None, "organization_id"),
    Index(None, "staged_at"),
)

# Which Zendesk organization stands for which Intacct record. Keyed by the external id
# we write (VENDORID, optionally prefixed), folded to lower case as Zendesk compares it.
vendor_org_links = Table(
    "vendor_org_links",
    metadata,
    Column("external_id", String(160), primary_key=True),
    Column("source_object", String(32), nullable=False),
    Column("vendor_id", String(128), nullable=False),
    Column("organization_id", BigInteger, nullable=True),
    Column("written_hash", String(64), nullable=True),
    Column("written_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index(None, "organization_id"),
)

# Which Intacct custom-object record holds which Zendesk ticket.
ticket_record_links = Table(
    "ticket_record_links",
    metadata,
    Column("ticket_id", BigInteger, primary_key=True),
    Column("record_id", String(64), nullable=True),
    Column("vendor_id", String(128), nullable=True),
    Column("written_hash", String(64), nullable=True),
    # The content hash of the staged ticket row the last successful write carried. What
    # must be written next is decided by comparing it with the row staged now, never by
    # comparing the clocks of different runs (a run that stages a newer version while
    # another is still writing the older one would otherwise be skipped).
    Column("staged_hash", String(64), nullable=True),
    Column("written_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
)

# Verified webhook deliveries, committed before the receiver answers 200.
webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invocation_id", String(128), nullable=True, unique=True),
    Column("event_id", String(128), nullable=True, unique=True),
    Column("event_type", String(128), nullable=True),
    Column("ticket_id", BigInteger, nullable=True),
    Column("headers", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=True),
    # Set by each claim from its own lease, so a claimer with a short lease cannot take
    # rows that another claimer holds under a longer one.
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("claim_token", String(64), nullable=True),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Index(None, "processed_at", "id"),
)

# Watermarks and cursors, advanced in the transaction that stores what they cover.
sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Whatever could not be written, with its reason; retried until resolved.
quarantine = Table(
    "quarantine",
    metadata,
    Column("kind", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("payload", JSON, nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Index(None, "resolved_at", "kind"),
)

# Verified Intacct outbound webhook deliveries: hints that something changed. Nothing a
# delivery carries is kept but its idempotency key (retries of one delivery repeat it).
# A hint is consumed once a vendor read that started after it has succeeded.
intacct_hints = Table(
    "intacct_hints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=True, unique=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("consumed_at", UTCDateTime, nullable=True),
    Index(None, "consumed_at", "received_at"),
)

# Intacct bills (APBILL) and, for customers, invoices (ARINVOICE), as last read: whatever
# their state, so a bill that is paid or reversed stops counting as open.
intacct_open_items = Table(
    "intacct_open_items",
    metadata,
    Column("source_object", String(32), primary_key=True),  # APBILL | ARINVOICE
    Column("record_no", BigInteger, primary_key=True),
    Column("party_id", String(128), nullable=False),  # VENDORID / CUSTOMERID
    Column("state", String(64), nullable=False),
    Column("when_due", Date, nullable=True),
    Column("total_due", String(40), nullable=False),  # decimal text, exact on both ledgers
    Column("currency", String(16), nullable=False),
    Column("when_modified", UTCDateTime, nullable=True),
    Column("staged_at", UTCDateTime, nullable=False),
    Index(None, "source_object", "party_id"),
)

# Intacct payments (APPYMT / ARPYMT), as last read: they give the last payment date.
intacct_payments = Table(
    "intacct_payments",
    metadata,
    Column("source_object", String(32), primary_key=True),  # APPYMT | ARPYMT
    Column("record_no", BigInteger, primary_key=True),
    Column("party_id", String(128), nullable=False),
    Column("state", String(64), nullable=False),
    Column("paid_on", Date, nullable=True),
    Column("amount", String(40), nullable=False),
    Column("when_modified", UTCDateTime, nullable=True),
    Column("staged_at", UTCDateTime, nullable=False),
    Index(None, "source_object", "party_id"),
)

# The standing last written to each organization: the hash of the organization_fields
# that write carried. What to write next is decided by comparing it with the fields
# computed now, never by comparing the clocks of different runs.
standing_links = Table(
    "standing_links",
    metadata,
    Column("external_id", String(160), primary_key=True),  # lower-cased, as vendor_org_links
    Column("organization_id", BigInteger, nullable=True),
    Column("written_hash", String(64), nullable=True),
    Column("written_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
)

# Credentials a service refused (DESIGN.md decision 12): while a row is here, scheduled runs
# and sensors skip, except one attempt per hour, until the credentials change (a different
# fingerprint) or a run succeeds. The fingerprint is a slow salted hash, never the secret.
credential_failures = Table(
    "credential_failures",
    metadata,
    Column("system", String(16), primary_key=True),  # intacct | zendesk
    Column("fingerprint", String(128), nullable=False),
    Column("message", Text, nullable=False),  # one line naming the variable to fix
    Column("failed_at", UTCDateTime, nullable=False),
    Column("last_attempt_at", UTCDateTime, nullable=False),
)
