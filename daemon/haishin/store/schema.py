"""The daemon's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

Every table holds plain columns and raw RFC 5322 bytes, never pickles (style.md). Times
are UTC, timezone-aware. Subscriber addresses are personal data (第4条): they live here
and nowhere else, never in logs.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every engine (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = sa.MetaData()

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

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("address", sa.String(320), nullable=False),  # as the subscriber wrote it
    sa.Column("address_key", sa.String(320), nullable=False),  # lower-cased, for lookups
    # pending | active | unsubscribed | disabled
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The consent record (特定電子メール法 第3条・第4条 ask senders to keep it):
    # when and how the address proved it wanted the mail.
    sa.Column("confirmed_at", UTCDateTime(), nullable=True),
    sa.Column("consent_method", sa.String(32), nullable=True),  # mail-reply | web-button | ...
    sa.Column("consent_evidence", sa.Text, nullable=True),
    sa.Column("unsubscribed_at", UTCDateTime(), nullable=True),
    sa.Column("unsubscribe_method", sa.String(32), nullable=True),
    sa.UniqueConstraint("channel", "address_key", name="uq_subscribers_channel_address"),
    sa.Index("ix_subscribers_channel_status", "channel", "status"),
)

confirmations = sa.Table(
    "confirmations",
    metadata,
    # A pending action (subscribe or unsubscribe) waiting for proof of mailbox receipt.
    # Its token is derived from the id by tokens.py (HMAC), so no secret is stored here.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("address_key", sa.String(320), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # subscribe | unsubscribe
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
    sa.Column("origin", sa.Text, nullable=True),  # how it was requested (inbound id, import)
    # the client network the request came from (ratelimit.client_network), NULL when it
    # came from no client (an import by staff)
    sa.Column("client_network", sa.String(64), nullable=True),
    # rate limits count rows per address, per client network and overall, in a window
    sa.Index("ix_confirmations_address_created", "address_key", "created_at"),
    sa.Index("ix_confirmations_created", "created_at"),
    sa.Index("ix_confirmations_network_created", "client_network", "created_at"),
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

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

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

auto_replies = sa.Table(
    "auto_replies",
    metadata,
    # Every automatic answer (not confirmation requests, which `confirmations` counts):
    # answers to forged mail must not flood a stranger's mailbox either. Rows older than
    # a day are of no use and are purged.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("address_key", sa.String(320), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("client_network", sa.String(64), nullable=True),  # as in `confirmations`
    sa.Index("ix_auto_replies_address_at", "address_key", "at"),
    sa.Index("ix_auto_replies_at", "at"),
    sa.Index("ix_auto_replies_network_at", "client_network", "at"),
)

bounce_scores = sa.Table(
    "bounce_scores",
    metadata,
    # One subscription's bounce score (bounces/score.py holds the rule): a row
    # only once something bounced; re-subscribing with confirmation deletes it.
    sa.Column(
        "subscriber_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        # a subscription that is deleted (a never-confirmed one, by the purge) takes its
        # score with it
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("last_bounce", sa.Date, nullable=True),  # the service's day (JST)
    sa.Column("day_weight", sa.Float, nullable=False),  # weight already counted that day
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

bounce_events = sa.Table(
    "bounce_events",
    metadata,
    # Every bounce that was not an auto-reply, matched or not: the weekly digest and
    # `haishin bounces` read these. Never a full address (第4条): the subscriber is a
    # reference, the diagnostic keeps only the domain of any address it quotes.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the service's day (JST)
    sa.Column("channel", sa.String(64), nullable=True),  # None: not even the slug was ours
    sa.Column(
        "subscriber_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        # the event stays when its subscription is deleted (the purge removes
        # never-confirmed ones): it then reads as a bounce of an unknown address
        sa.ForeignKey("subscribers.id", ondelete="SET NULL"),
        nullable=True,  # None: unmatched, or the subscription is gone
    ),
    sa.Column("source", sa.String(16), nullable=False),  # verp | smtp | plain
    sa.Column("kind", sa.String(16), nullable=False),  # bounces.classify.model.BounceClass
    sa.Column("outcome", sa.String(16), nullable=False),  # bounces.BounceOutcome
    sa.Column("status", sa.String(16), nullable=True),  # RFC 3463 code, e.g. 5.1.1
    sa.Column("diagnostic", sa.Text, nullable=True),  # masked
    sa.Column("score", sa.Float, nullable=True),  # the score after this event
    sa.Column("inbound_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
    sa.Column("outbound_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
    # issue 12: the reason (Sisimai's vocabulary) and the recipient's domain (no local part:
    # the sender-side alarm counts per destination domain, the carrier rule per domain)
    sa.Column("reason", sa.String(32), nullable=True),
    sa.Column("domain", sa.String(255), nullable=True),
    sa.Index("ix_bounce_events_channel_day", "channel", "day"),
    sa.Index("ix_bounce_events_domain_at", "domain", "at"),
)

bounce_alarms = sa.Table(
    "bounce_alarms",
    metadata,
    # The sender-side alarm to the クラウドサービス管理者 (issue 12, item 3): one row per
    # destination domain and window, so it is mailed once per window, by one daemon.
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("window_start", UTCDateTime(), primary_key=True),
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
)

bounce_digests = sa.Table(
    "bounce_digests",
    metadata,
    # The weekly digest to a channel's 情報管理者 that was queued: one per channel per week
    # (the primary key makes a second run, or a second daemon, a no-op).
    sa.Column("channel", sa.String(64), primary_key=True),
    sa.Column("week", sa.Date, primary_key=True),  # the Monday (JST) of the week
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
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
