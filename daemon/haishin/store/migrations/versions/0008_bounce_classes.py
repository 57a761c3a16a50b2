"""bounce classes: each event's reason and recipient domain; the sender-side alarms sent

Issue 12: refusals are told apart from dead addresses (the reason column), counted per
destination domain (the domain column), and alarm the クラウドサービス管理者 once per
window (bounce_alarms).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("bounce_events") as batch:
        batch.add_column(sa.Column("reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("domain", sa.String(length=255), nullable=True))
    op.create_index("ix_bounce_events_domain_at", "bounce_events", ["domain", "at"], unique=False)
    op.create_table(
        "bounce_alarms",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("window_start", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("message_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("domain", "window_start"),
    )


def downgrade() -> None:
    op.drop_table("bounce_alarms")
    op.drop_index("ix_bounce_events_domain_at", table_name="bounce_events")
    with op.batch_alter_table("bounce_events") as batch:
        batch.drop_column("domain")
        batch.drop_column("reason")
