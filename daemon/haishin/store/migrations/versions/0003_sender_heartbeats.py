"""senders: heartbeats, so a dead sender's claimed rows are taken back promptly

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "senders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("started_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("senders")
