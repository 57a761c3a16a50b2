"""Bounces: the events as classified, each address's score, and the alarms and digests
sent to staff.
"""

from __future__ import annotations

import sqlalchemy as sa

from .columns import UTCDateTime, metadata

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
