"""Operating records: the audit log, the IMAP mailboxes' state, and the 第9条 notices of
the service's stops.
"""

from __future__ import annotations

import sqlalchemy as sa

from .columns import _ID, UTCDateTime, metadata

audit_log = sa.Table(
    "audit_log",
    metadata,
    # 第4条(3): every administrative action on the store — who, what, when. Addresses
    # appear only as keyed hashes, like in the logs.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_audit_log_at", "at"),
)

imap_mailboxes = sa.Table(
    "imap_mailboxes",
    metadata,
    # The IMAP ingester's place in each mailbox it reads (inbound/imap): UIDs only ascend
    # within one UIDVALIDITY (RFC 3501 §2.3.1.1), so the pair says how far it got. The
    # mailbox is named by a hash of host, user and folder: no user name is stored.
    sa.Column("mailbox", sa.String(64), primary_key=True),
    # both are 32-bit unsigned numbers (RFC 3501 §9, nz-number): beyond a signed INTEGER
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("last_uid", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

imap_seen = sa.Table(
    "imap_seen",
    metadata,
    # The content key (SHA-256 of the exact bytes) of each message the ingester stored: a
    # message offered again (a session that ended before marking it, a UIDVALIDITY change,
    # a restored copy) is marked on the server, not stored again. Kept for
    # ImapSettings.dedupe_days, then pruned by age.
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("mailbox", sa.String(64), nullable=False),
    sa.Column("uid", sa.BigInteger, nullable=False),
    sa.Column("stored_at", UTCDateTime(), nullable=False),
    sa.Index("ix_imap_seen_stored_at", "stored_at"),
)

outage_notices = sa.Table(
    "outage_notices",
    metadata,
    # 第9条2・4: what the other party must be told of each stop in the served registry, and
    # whether the daemon has told them. The daemon mirrors its registry's stops here (so
    # `haishin status` and the 統括管理者's report need only the store); the row is claimed
    # (state pending → queued) in the transaction that queues the mail, so two daemons on
    # one PostgreSQL database, or a restart, send it once (operations/announce.py).
    sa.Column("outage_id", sa.Text, primary_key=True),  # as long as the file name is
    sa.Column("kind", sa.String(8), primary_key=True),  # notice (planned) | report (emergency)
    sa.Column("stopped_by", sa.String(32), nullable=False),  # a registry Role value
    sa.Column("to_role", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("start", UTCDateTime(), nullable=False),
    sa.Column("end", UTCDateTime(), nullable=True),
    sa.Column("due_at", UTCDateTime(), nullable=False),  # never sent before this
    # pending → queued (the daemon queued it) | recorded (the registry file records a
    # notice given by other means: nothing to send)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=True),  # the file's notice/report at
    sa.Column("queued_at", UTCDateTime(), nullable=True),
    sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),  # queued how often
    sa.Column("seen_at", UTCDateTime(), nullable=False),  # last mirrored from a registry
)

report_mails = sa.Table(
    "report_mails",
    metadata,
    # A mail sent once per period and recipient: the monthly report (period: the month's
    # first day, recipient: a department or the 統括管理者) and the dormancy reminder
    # (period: the day the channel's quiet span began). The primary key makes a second
    # daemon or a restart a no-op; the row is claimed in the transaction that queues it.
    sa.Column("kind", sa.String(16), primary_key=True),  # monthly | dormant
    sa.Column("subject", sa.String(128), primary_key=True),  # department, channel or *
    sa.Column("period", sa.Date, primary_key=True),
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.Column("message_id", _ID, nullable=True),
)
