"""Subscribers and what they asked for: subscriptions, confirmation requests, the automatic
answers counted against the limits, the citizen's own page links and address changes.
Addresses are personal data (第4条): they live here and nowhere else, never in logs.
"""

from __future__ import annotations

import sqlalchemy as sa

from .columns import _ID, UTCDateTime, metadata

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
    # the citizen's own page lists every channel of one address (store/subscribers.of_address)
    sa.Index("ix_subscribers_address", "address_key"),
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

mypage_links = sa.Table(
    "mypage_links",
    metadata,
    # One link to the citizen's own page (`/me/<token>`), mailed to `address` in answer to
    # a mail to `mypage@`. The token is derived from the id (tokens.py, HMAC), so no secret
    # is stored; `revoked_at` is set when the address moves away (its subscriptions
    # went to another address), so an old link then shows and changes nothing.
    sa.Column("id", _ID, primary_key=True),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("address_key", sa.String(320), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Index("ix_mypage_links_address", "address_key"),
    sa.Index("ix_mypage_links_created", "created_at"),
)

address_moves = sa.Table(
    "address_moves",
    metadata,
    # A change of address asked on the page of `link`: nothing moves until the new address
    # proves it reads its mail (the token mailed to it). Both addresses stay here as part
    # of the consent record (特定電子メール法: who agreed, when, how).
    sa.Column("id", _ID, primary_key=True),
    sa.Column("link", _ID, sa.ForeignKey("mypage_links.id"), nullable=False),
    sa.Column("old_address", sa.String(320), nullable=False),
    sa.Column("old_key", sa.String(320), nullable=False),
    sa.Column("new_address", sa.String(320), nullable=False),
    sa.Column("new_key", sa.String(320), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("requested_from", sa.String(64), nullable=True),  # the page's client address
    sa.Column("used_at", UTCDateTime(), nullable=True),  # confirmed, or void (old moved)
    sa.Column("confirmed_by", sa.Text, nullable=True),  # how: web button or mail reply
    sa.Index("ix_address_moves_link", "link"),
    sa.Index("ix_address_moves_old", "old_key"),
)

subscription_events = sa.Table(
    "subscription_events",
    metadata,
    # Each subscription's start and end, with its cause, for the monthly report (issue 15):
    # `subscribers` keeps only the latest state, a month's figures need the changes. The
    # subscriber is a reference, never an address (第4条).
    sa.Column("id", _ID, primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("subscriber_id", _ID, nullable=True),
    sa.Column("change", sa.String(16), nullable=False),  # store/history.py Change
    sa.Column("cause", sa.String(16), nullable=True),  # store/history.py Cause, on leaving
    sa.Index("ix_subscription_events_channel_at", "channel", "at"),
)
