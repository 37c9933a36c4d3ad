"""The initial ledger: vendors, tickets, links, webhook inbox, cursors, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector_pipeline.staging.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intacct_vendors",
        sa.Column("source_object", sa.String(32), nullable=False),
        sa.Column("record_no", sa.BigInteger(), nullable=False),
        sa.Column("vendor_id", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("when_modified", UTCDateTime(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("staged_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source_object", "record_no", name="pk_intacct_vendors"),
    )
    op.create_index("ix_intacct_vendors_vendor_id", "intacct_vendors", ["vendor_id"])
    op.create_index("ix_intacct_vendors_when_modified", "intacct_vendors", ["when_modified"])

    op.create_table(
        "zendesk_tickets",
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.Column("generated_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("staged_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_zendesk_tickets"),
    )
    op.create_index("ix_zendesk_tickets_organization_id", "zendesk_tickets", ["organization_id"])
    op.create_index("ix_zendesk_tickets_staged_at", "zendesk_tickets", ["staged_at"])

    op.create_table(
        "vendor_org_links",
        sa.Column("external_id", sa.String(160), nullable=False),
        sa.Column("source_object", sa.String(32), nullable=False),
        sa.Column("vendor_id", sa.String(128), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("written_hash", sa.String(64), nullable=True),
        sa.Column("written_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("external_id", name="pk_vendor_org_links"),
    )
    op.create_index("ix_vendor_org_links_organization_id", "vendor_org_links", ["organization_id"])

    op.create_table(
        "ticket_record_links",
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=True),
        sa.Column("vendor_id", sa.String(128), nullable=True),
        sa.Column("written_hash", sa.String(64), nullable=True),
        sa.Column("written_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_ticket_record_links"),
    )

    op.create_table(
        "webhook_inbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("invocation_id", sa.String(128), nullable=True),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("event_type", sa.String(128), nullable=True),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_inbox"),
        sa.UniqueConstraint("invocation_id", name="uq_webhook_inbox_invocation_id"),
        sa.UniqueConstraint("event_id", name="uq_webhook_inbox_event_id"),
    )
    op.create_index("ix_webhook_inbox_processed_at_id", "webhook_inbox", ["processed_at", "id"])

    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sync_cursors"),
    )

    op.create_table(
        "quarantine",
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "key", name="pk_quarantine"),
    )
    op.create_index("ix_quarantine_resolved_at_kind", "quarantine", ["resolved_at", "kind"])


def downgrade() -> None:
    for table in (
        "quarantine",
        "sync_cursors",
        "webhook_inbox",
        "ticket_record_links",
        "vendor_org_links",
        "zendesk_tickets",
        "intacct_vendors",
    ):
        op.drop_table(table)
