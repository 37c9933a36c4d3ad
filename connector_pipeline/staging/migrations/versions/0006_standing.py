"""Financial standing: staged bills / invoices and payments, and what was written to each
organization.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector_pipeline.staging.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intacct_open_items",
        sa.Column("source_object", sa.String(32), nullable=False),
        sa.Column("record_no", sa.BigInteger(), nullable=False),
        sa.Column("party_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("when_due", sa.Date(), nullable=True),
        sa.Column("total_due", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("when_modified", UTCDateTime(), nullable=True),
        sa.Column("staged_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source_object", "record_no", name="pk_intacct_open_items"),
    )
    op.create_index(
        "ix_intacct_open_items_source_object_party_id",
        "intacct_open_items",
        ["source_object", "party_id"],
    )
    op.create_table(
        "intacct_payments",
        sa.Column("source_object", sa.String(32), nullable=False),
        sa.Column("record_no", sa.BigInteger(), nullable=False),
        sa.Column("party_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("when_modified", UTCDateTime(), nullable=True),
        sa.Column("staged_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source_object", "record_no", name="pk_intacct_payments"),
    )
    op.create_index(
        "ix_intacct_payments_source_object_party_id",
        "intacct_payments",
        ["source_object", "party_id"],
    )
    op.create_table(
        "standing_links",
        sa.Column("external_id", sa.String(160), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("written_hash", sa.String(64), nullable=True),
        sa.Column("written_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("external_id", name="pk_standing_links"),
    )


def downgrade() -> None:
    op.drop_table("standing_links")
    op.drop_index("ix_intacct_payments_source_object_party_id", table_name="intacct_payments")
    op.drop_table("intacct_payments")
    op.drop_index("ix_intacct_open_items_source_object_party_id", table_name="intacct_open_items")
    op.drop_table("intacct_open_items")
