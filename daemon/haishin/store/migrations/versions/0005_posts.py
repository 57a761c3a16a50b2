"""posts (approval, schedule, fan-out state) and their archive

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = haishin.store.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("spool_id", _ID, nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("approval", sa.String(length=16), nullable=False),
        sa.Column("approver", sa.String(length=320), nullable=True),
        sa.Column("approval_method", sa.String(length=32), nullable=True),
        sa.Column("findings", sa.Text(), server_default="[]", nullable=False),
        sa.Column("send_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("approved_at", _TIME, nullable=True),
        sa.Column("sent_at", _TIME, nullable=True),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("correction_of", _ID, nullable=True),
        sa.Column("out_message_id", sa.Text(), nullable=True),
        sa.Column("outbound_message", _ID, nullable=True),
        sa.Column("cursor", _ID, server_default="0", nullable=False),
        sa.Column("recipients", sa.Integer(), server_default="0", nullable=False),
        sa.Column("archive_slug", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_posts_state_send_at", "posts", ["state", "send_at"], unique=False)
    op.create_index("ix_posts_channel_state", "posts", ["channel", "state"], unique=False)
    op.create_table(
        "archive",
        sa.Column("post_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sent_at", _TIME, nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"]),
        sa.PrimaryKeyConstraint("post_id"),
    )
    op.create_index("ix_archive_channel_sent", "archive", ["channel", "sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_archive_channel_sent", table_name="archive")
    op.drop_table("archive")
    op.drop_index("ix_posts_channel_state", table_name="posts")
    op.drop_index("ix_posts_state_send_at", table_name="posts")
    op.drop_table("posts")
