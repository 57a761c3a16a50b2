"""auto_replies: when the daemon answered whom, to limit answers per address and per hour

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_replies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column("at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auto_replies_address_at", "auto_replies", ["address_key", "at"])
    op.create_index("ix_auto_replies_at", "auto_replies", ["at"])


def downgrade() -> None:
    op.drop_index("ix_auto_replies_at", table_name="auto_replies")
    op.drop_index("ix_auto_replies_address_at", table_name="auto_replies")
    op.drop_table("auto_replies")
