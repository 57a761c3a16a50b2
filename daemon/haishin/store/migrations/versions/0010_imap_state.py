"""IMAP state in the store: each mailbox's UIDVALIDITY and last UID, the seen-set

Issue 13 item 4: the ingester kept these in a SQLite file of its own (`--imap-state`),
outside migrations, backups and PostgreSQL, so daemons sharing one database could not share
them. An old file is imported once by the ingester at start (store/imap_state.py).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_mailboxes",
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox"),
    )
    op.create_table(
        "imap_seen",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("stored_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_imap_seen_stored_at", "imap_seen", ["stored_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_imap_seen_stored_at", table_name="imap_seen")
    op.drop_table("imap_seen")
    op.drop_table("imap_mailboxes")
