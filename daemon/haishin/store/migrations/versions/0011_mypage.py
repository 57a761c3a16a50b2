"""mypage_links, address_moves: the citizen's own page and its change of address

Issue 14 (and an index for one address's subscriptions): a mail to `mypage@` is answered with a link (one row here, its token derived
from the id); an address change waits for the new address to confirm.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_subscribers_address", "subscribers", ["address_key"])
    op.create_table(
        "mypage_links",
        sa.Column("id", _ID, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column("created_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mypage_links_address", "mypage_links", ["address_key"])
    op.create_index("ix_mypage_links_created", "mypage_links", ["created_at"])
    op.create_table(
        "address_moves",
        sa.Column("id", _ID, nullable=False),
        sa.Column("link", _ID, nullable=False),
        sa.Column("old_address", sa.String(length=320), nullable=False),
        sa.Column("old_key", sa.String(length=320), nullable=False),
        sa.Column("new_address", sa.String(length=320), nullable=False),
        sa.Column("new_key", sa.String(length=320), nullable=False),
        sa.Column("created_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_from", sa.String(length=64), nullable=True),
        sa.Column("used_at", haishin.store.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["link"], ["mypage_links.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_address_moves_link", "address_moves", ["link"])
    op.create_index("ix_address_moves_old", "address_moves", ["old_key"])


def downgrade() -> None:
    op.drop_index("ix_address_moves_old", table_name="address_moves")
    op.drop_index("ix_address_moves_link", table_name="address_moves")
    op.drop_table("address_moves")
    op.drop_index("ix_mypage_links_created", table_name="mypage_links")
    op.drop_index("ix_mypage_links_address", table_name="mypage_links")
    op.drop_table("mypage_links")
    op.drop_index("ix_subscribers_address", table_name="subscribers")
