"""client networks: the inbound client's address, the network each answer was counted for

Issue 11, item 3: limits on automatic answers are kept per client network as well as per
address and overall. Three added columns and their indexes, after the bounce classes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbound", sa.Column("client_address", sa.String(length=64), nullable=True))
    op.add_column("confirmations", sa.Column("client_network", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_confirmations_network_created", "confirmations", ["client_network", "created_at"]
    )
    op.add_column("auto_replies", sa.Column("client_network", sa.String(length=64), nullable=True))
    op.create_index("ix_auto_replies_network_at", "auto_replies", ["client_network", "at"])


def downgrade() -> None:
    op.drop_index("ix_auto_replies_network_at", table_name="auto_replies")
    op.drop_column("auto_replies", "client_network")
    op.drop_index("ix_confirmations_network_created", table_name="confirmations")
    op.drop_column("confirmations", "client_network")
    op.drop_column("inbound", "client_address")
