"""Webhook inbox: each claim records when its own lease expires.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector_pipeline.staging.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_inbox", sa.Column("lease_expires_at", UTCDateTime(), nullable=True))
    # Claims made before this revision carried no expiry: let them lapse at once.
    op.execute(
        "UPDATE webhook_inbox SET lease_expires_at = claimed_at WHERE claimed_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_inbox") as batch:
        batch.drop_column("lease_expires_at")
