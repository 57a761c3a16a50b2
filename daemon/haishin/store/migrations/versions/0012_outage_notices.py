"""outage_notices: the 第9条 notices and reports the daemon owes and has sent

Issue 15 item 5: the daemon itself sends the advance notice of a planned stop (第9条2・4)
and the report of an emergency one when due, once across restarts and daemons sharing a
database, and `haishin status` shows them from the store alone.

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outage_notices",
        sa.Column("outage_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("stopped_by", sa.String(length=32), nullable=False),
        sa.Column("to_role", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("start", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", haishin.store.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queued_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("seen_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("outage_id", "kind"),
    )


def downgrade() -> None:
    op.drop_table("outage_notices")
