"""bounces: per-subscription bounce scores, bounce events, weekly digests sent

Self-contained (issue 6, item 6): it touches no table of the posting flow, so it can be
re-pointed after the posting flow's revision at merge without change.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bounce_scores",
        sa.Column("subscriber_id", _ID, autoincrement=False, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("last_bounce", sa.Date(), nullable=True),
        sa.Column("day_weight", sa.Float(), nullable=False),
        sa.Column("updated_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id"),
    )
    op.create_table(
        "bounce_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("subscriber_id", _ID, nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("inbound_id", _ID, nullable=True),
        sa.Column("outbound_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_bounce_events_channel_day", "bounce_events", ["channel", "day"], unique=False
    )
    op.create_table(
        "bounce_digests",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("sent_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("channel", "week"),
    )


def downgrade() -> None:
    op.drop_table("bounce_digests")
    op.drop_index("ix_bounce_events_channel_day", table_name="bounce_events")
    op.drop_table("bounce_events")
    op.drop_table("bounce_scores")
