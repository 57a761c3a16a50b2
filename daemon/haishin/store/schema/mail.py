"""Mail in and out: the inbound spool, the outbound queue and its message bodies, the posts
with their approvals and releases, the back numbers (archive) and the senders' heartbeats.
"""

from __future__ import annotations

import sqlalchemy as sa

from .columns import _ID, UTCDateTime, metadata

inbound = sa.Table(
    "inbound",
    metadata,
    # One accepted message (SMTP, LMTP or IMAP). The row is committed before the 250
    # (RFC 5321 §4.1.1.4: after 250 the message is ours to keep).
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # states.Intake
    sa.Column("mail_from", sa.Text, nullable=False),  # "" is the null sender
    sa.Column("rcpts", sa.Text, nullable=False),  # JSON list of envelope recipients
    sa.Column("raw", sa.LargeBinary, nullable=False),
    # new → done | held (kept for a later stage, e.g. posts) | failed (shunted, kept)
    sa.Column("state", sa.String(16), nullable=False, server_default="new"),  # states.SpoolState
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("outcome", sa.Text, nullable=True),  # what the router did, for the audit
    sa.Column("done_at", UTCDateTime(), nullable=True),
    # IMAP may offer the same message again after a crash or a UIDVALIDITY change: its
    # content hash makes the second store a no-op. SMTP leaves it NULL (a resend is new).
    sa.Column("dedupe_key", sa.String(64), nullable=True),
    # The client that handed the message over: the connecting address, or behind Postfix
    # the one Postfix saw (XFORWARD). The limits on automatic answers count per client
    # network from it (outbound/ratelimit.py). NULL for IMAP, which has no client.
    sa.Column("client_address", sa.String(64), nullable=True),
    sa.Index("ix_inbound_state_id", "state", "id"),
    sa.Index("uq_inbound_dedupe_key", "dedupe_key", unique=True),
)

outbound_messages = sa.Table(
    "outbound_messages",
    metadata,
    # One rendered message body; a post to 100,000 subscribers has one row here and
    # 100,000 rows in `outbound` (design.md: render once, per recipient only headers).
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # states.MessageKind
    sa.Column("raw", sa.LargeBinary, nullable=False),
)

outbound = sa.Table(
    "outbound",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "message_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("outbound_messages.id"),
        nullable=False,
    ),
    sa.Column("mail_from", sa.Text, nullable=False),  # envelope sender; "" is null
    sa.Column("rcpt", sa.String(320), nullable=False),
    sa.Column("headers", sa.LargeBinary, nullable=True),  # per-recipient headers, prepended
    # queued → sending → sent | bounced (5xx) | failed (gave up after retrying)
    sa.Column("state", sa.String(16), nullable=False, server_default="queued"),  # states.QueueState
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_try", UTCDateTime(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("done_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbound_state_next_try", "state", "next_try"),
    sa.Index("ix_outbound_message", "message_id"),
)

posts = sa.Table(
    "posts",
    metadata,
    # One post to a channel (第5条: the 情報管理者 answers for its content, timing and
    # recipients). Its life: held → approved | scheduled → sending → sent, or ends as
    # rejected | refused | withdrawn | expired. Every decision is recorded here.
    sa.Column("id", _ID, primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("spool_id", _ID, nullable=True),  # the inbound row it came in (audit)
    sa.Column("sender", sa.String(320), nullable=False),  # a staff address, not a subscriber
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=True),
    sa.Column("message_id", sa.Text, nullable=True),  # of the post as received
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("approval", sa.String(16), nullable=False),  # confirm | manager | authenticated
    sa.Column("approver", sa.String(320), nullable=True),
    sa.Column("approval_method", sa.String(32), nullable=True),  # mail-reply | web-button | cli
    sa.Column("findings", sa.Text, nullable=False, server_default="[]"),  # 第3条(2) audit, JSON
    sa.Column("send_at", UTCDateTime(), nullable=True),  # 配信日時; NULL: when approved
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("approved_at", UTCDateTime(), nullable=True),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("ended_at", UTCDateTime(), nullable=True),  # rejected, withdrawn, expired
    sa.Column("note", sa.Text, nullable=True),  # why it ended, or why it is held back
    sa.Column("correction_of", _ID, nullable=True),  # 第5条(1): the sent post it corrects
    # The outbound message: its Message-ID (a correction refers to it), its body row, and
    # the fan-out cursor (the last subscriber id queued), committed with each batch so a
    # crash resumes where it stopped rather than starting again.
    sa.Column("out_message_id", sa.Text, nullable=True),
    sa.Column("outbound_message", _ID, nullable=True),
    sa.Column("cursor", _ID, nullable=False, server_default="0"),
    sa.Column("recipients", sa.Integer, nullable=False, server_default="0"),
    sa.Column("archive_slug", sa.String(64), nullable=True),
    # The daemon releasing the post and until when: one fan-out at a time across daemons
    # sharing the store; another takes over only when the lease ran out (its holder died).
    sa.Column("release_owner", sa.String(64), nullable=True),
    sa.Column("release_until", UTCDateTime(), nullable=True),
    sa.Index("ix_posts_state_send_at", "state", "send_at"),
    sa.Index("ix_posts_channel_state", "channel", "state"),
)

archive = sa.Table(
    "archive",
    metadata,
    # What was sent, for the back numbers (第7条 site): never an address or a token.
    sa.Column("post_id", _ID, sa.ForeignKey("posts.id"), primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("slug", sa.String(64), nullable=False),  # the file name and URL part
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.Column("public", sa.Boolean, nullable=False),
    sa.Index("ix_archive_channel_sent", "channel", "sent_at"),
    sa.Index("ux_archive_channel_slug", "channel", "slug", unique=True),  # one page per URL
)

senders = sa.Table(
    "senders",
    metadata,
    # Each running sender's heartbeat: rows claimed by a sender whose heartbeat stopped
    # (killed, machine lost) go back to the queue (design.md: at most the in-flight batch
    # is repeated), while live daemons sharing a PostgreSQL database keep their claims.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Column("host", sa.String(255), nullable=True),  # host and pid, for people
    sa.Column("rate", sa.Float, nullable=True),  # messages/s over the last 10 seconds
)

# Limits shared by the daemons of one PostgreSQL database (outbound/sharing.py): each
# shared bucket's next free send time, and the connection slots of each limited domain,
# leased by a daemon and given back by it, or by expiry when it dies.
rate_grants = sa.Table(
    "rate_grants",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("due_at", UTCDateTime(), nullable=False),
)

lane_leases = sa.Table(
    "lane_leases",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)
