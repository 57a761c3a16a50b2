"""The daemon's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

Every table holds plain columns and raw RFC 5322 bytes, never pickles (style.md). Times
are UTC, timezone-aware. Subscriber addresses are personal data (第4条): they live here
and nowhere else, never in logs.

The tables are grouped by what they hold (columns, mail, people, bounces, records);
everything is importable from here, as before.
"""

from .bounces import bounce_alarms, bounce_digests, bounce_events, bounce_scores
from .columns import UTCDateTime, metadata
from .mail import (
    archive,
    inbound,
    lane_leases,
    outbound,
    outbound_messages,
    posts,
    rate_grants,
    senders,
)
from .people import (
    address_moves,
    auto_replies,
    confirmations,
    mypage_links,
    subscribers,
    subscription_events,
)
from .records import audit_log, imap_mailboxes, imap_seen, outage_notices, report_mails

__all__ = [
    "UTCDateTime",
    "address_moves",
    "archive",
    "audit_log",
    "auto_replies",
    "bounce_alarms",
    "bounce_digests",
    "bounce_events",
    "bounce_scores",
    "confirmations",
    "imap_mailboxes",
    "imap_seen",
    "inbound",
    "lane_leases",
    "metadata",
    "mypage_links",
    "outage_notices",
    "outbound",
    "outbound_messages",
    "posts",
    "rate_grants",
    "report_mails",
    "senders",
    "subscribers",
    "subscription_events",
]
