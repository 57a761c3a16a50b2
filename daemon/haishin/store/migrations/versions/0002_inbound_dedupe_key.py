"""inbound.dedupe_key: IMAP stores are idempotent on the message's content hash

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbound", sa.Column("dedupe_key", sa.String(length=64), nullable=True))
    op.create_index("uq_inbound_dedupe_key", "inbound", ["dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_inbound_dedupe_key", table_name="inbound")
    op.drop_column("inbound", "dedupe_key")
