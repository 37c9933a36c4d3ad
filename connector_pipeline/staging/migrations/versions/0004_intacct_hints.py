"""Intacct outbound webhook deliveries, kept as hints that wake the vendor read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector_pipeline.staging.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intacct_hints",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("consumed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_intacct_hints"),
        sa.UniqueConstraint("idempotency_key", name="uq_intacct_hints_idempotency_key"),
    )
    op.create_index(
        "ix_intacct_hints_consumed_at_received_at",
        "intacct_hints",
        ["consumed_at", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_intacct_hints_consumed_at_received_at", table_name="intacct_hints")
    op.drop_table("intacct_hints")
