"""Ticket record links remember which staged content their last write carried.

`tickets_to_load` compared `staged_at` with `written_at`, the clocks of two different
runs: a version staged while another run was still writing the older one looked written.
It now compares the staged row's content hash with the one the write carried.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing links start without it: each of their tickets is planned once more, and
    # those whose record would come out the same only get the hash recorded (no API call).
    op.add_column("ticket_record_links", sa.Column("staged_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_record_links") as batch:
        batch.drop_column("staged_hash")
