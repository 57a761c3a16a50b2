"""limits shared by the daemons of one database: rate grants, lane leases, liveness

Issue 16 item 1: token buckets were per process, so every limit was multiplied by the
number of daemons. `rate_grants` holds each shared bucket's next free send time,
`lane_leases` the connection slots of each limited domain (outbound/sharing.py).
Item 3: each sender's host and rate over the last 10 seconds, for `haishin status`.

Revision ID: 0014
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_grants",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("due_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "lane_leases",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "slot"),
    )
    op.add_column("senders", sa.Column("host", sa.String(length=255), nullable=True))
    op.add_column("senders", sa.Column("rate", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("senders", "rate")
    op.drop_column("senders", "host")
    op.drop_table("lane_leases")
    op.drop_table("rate_grants")
