"""One release per post across daemons, and one back number per archive URL

Issue 16 item 2: two daemons on one PostgreSQL database both fanned out the same post and
both tried to archive it (a `UniqueViolation archive_pkey` traceback in the loser's log).
A post being released now carries a lease: the daemon that holds it (`release_owner`)
and until when (`release_until`); another daemon takes the post over only once the lease
has run out (the holder died). The back numbers are read by the site from `archive`, so
its URL part is unique per channel: two rows could not publish one page.

Revision ID: 0015
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haishin.store.schema

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("release_owner", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column(
                "release_until", haishin.store.schema.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_index("ux_archive_channel_slug", "archive", ["channel", "slug"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_archive_channel_slug", table_name="archive")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("release_until")
        batch.drop_column("release_owner")
