"""Monthly reports and dormancy reminders: subscription history and mails sent once

Issue 15 items 6 and 7. `subscription_events` records each subscription's start and end
with its cause (the report's figures per month); it is filled from the subscribers' current
state once, so a store that existed before keeps its last known start and end of each
subscription. `report_mails` holds one row per report or reminder mail queued.

Revision ID: 0013
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_AT = haishin.store.schema.UTCDateTime(timezone=True)

# the causes as store/history.py names them, from the methods the code records
_CAUSE = """CASE
    WHEN unsubscribe_method = 'complaint' THEN 'complaint'
    WHEN unsubscribe_method LIKE 'bounce%' THEN 'bounce'
    WHEN unsubscribe_method = 'staff' THEN 'staff'
    ELSE 'citizen' END"""


def upgrade() -> None:
    op.create_table(
        "subscription_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("subscriber_id", _ID, nullable=True),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_subscription_events_channel_at",
        "subscription_events",
        ["channel", "at"],
        unique=False,
    )
    op.create_table(
        "report_mails",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("sent_at", _AT, nullable=False),
        sa.Column("message_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("kind", "subject", "period"),
    )
    op.execute(
        "INSERT INTO subscription_events (at, channel, subscriber_id, change, cause) "
        "SELECT confirmed_at, channel, id, 'joined', NULL FROM subscribers "
        "WHERE confirmed_at IS NOT NULL"
    )
    op.execute(
        "INSERT INTO subscription_events (at, channel, subscriber_id, change, cause) "
        f"SELECT COALESCE(unsubscribed_at, updated_at), channel, id, 'left', {_CAUSE} "
        "FROM subscribers WHERE status IN ('unsubscribed', 'disabled') "
        "AND confirmed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("report_mails")
    op.drop_index("ix_subscription_events_channel_at", table_name="subscription_events")
    op.drop_table("subscription_events")
