"""service.yaml's operating settings: the limits on automatic answers (per address, per
client network, overall), how bounces are judged and acted on, and the pace of delivery
(overall and per destination domain). Settings, not code (第10条).
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from .basics import Role, Strict


class Cap(Strict):
    """At most `count` answers within the last `window_hours`. A window is at most a day:
    the rows it counts are purged after that (store/retention.py)."""

    count: int = Field(gt=0)
    window_hours: int = Field(default=1, gt=0, le=24)


class AnswerLimits(Strict):
    """One kind of automatic answer, limited three ways (design.md, reliability promises):
    per address (nobody's mailbox is flooded by forged requests), per client network (one
    client cannot use up everyone's share) and overall (the service cannot be made a
    spam cannon). The per-network cap must stay below the overall one, or one network's
    flood could again leave every other network unanswered."""

    per_address: Cap
    per_network: Cap
    overall: Cap

    @model_validator(mode="after")
    def _network_bites_first(self) -> AnswerLimits:
        # the most one network can take within one overall window: its cap once per
        # per-network window that fits in it
        windows = -(-self.overall.window_hours // self.per_network.window_hours)
        most = self.per_network.count * windows
        if most >= self.overall.count:
            raise PydanticCustomError(
                "network_cap",
                "1 つのネットワークが overall の {hours} 時間に使える数（per_network.count "
                "{network} × {windows}）は overall.count（{overall}）より小さくしてください"
                "（同じか大きいと、1 つのネットワークからの大量の申込みで全体の枠が尽き、"
                "ほかの利用者に返信できなくなります）",
                {
                    "hours": self.overall.window_hours,
                    "network": self.per_network.count,
                    "windows": windows,
                    "overall": self.overall.count,
                },
            )
        return self


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOOPBACK: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("127.0.0.1/32"),
    ipaddress.IPv6Network("::1/128"),
)


class ClientNetworks(Strict):
    """How client addresses are grouped into networks for the per-network caps: one
    home, office or provider gets a /24 (IPv4) or a /56 (IPv6, a typical end-site
    allocation in Japan) at once."""

    ipv4_prefix: int = Field(default=24, ge=8, le=32)
    ipv6_prefix: int = Field(default=56, ge=16, le=128)
    forwarders: list[IPNetwork] = Field(default_factory=lambda: list(_LOOPBACK))
    """Front ends (Postfix, deploy/) that may tell, by XFORWARD, which client they saw;
    from anyone else XFORWARD is refused (Postfix's XFORWARD_README, "access control")."""


class Limits(Strict):
    confirmations: AnswerLimits = AnswerLimits(
        per_address=Cap(count=3, window_hours=24),
        per_network=Cap(count=200, window_hours=1),
        overall=Cap(count=3000, window_hours=1),
    )
    """Confirmation requests (subscribe, unsubscribe): double opt-in mail to an address
    that asked for nothing if the request was forged."""
    auto_replies: AnswerLimits = AnswerLimits(
        per_address=Cap(count=10, window_hours=24),
        per_network=Cap(count=300, window_hours=1),
        overall=Cap(count=5000, window_hours=1),
    )
    """Other automatic answers (help, already subscribed, expired…): forged mail could
    otherwise make the service answer a stranger without end."""
    client_networks: ClientNetworks = ClientNetworks()
    # Upper bounds on every span added to or taken from the clock: without them a slip
    # (99999999) passed haishin check and then each confirmation, held post or retention
    # pass ended in OverflowError (a date past the year 9999, a token's 3-byte expiry)
    token_ttl_hours: int = Field(default=72, gt=0, le=24 * 365)
    held_post_ttl_hours: int = Field(default=72, gt=0, le=24 * 365)
    mypage_link_ttl_hours: int = Field(default=24, gt=0, le=24 * 30)
    """How long a link to the citizen's own page (`mypage@`, `/me/<token>`) works."""
    max_message_kb: int = Field(default=1024, gt=0)
    unsubscribed_retention_days: int = Field(default=180, ge=0, le=365 * 100)
    spool_retention_days: int = Field(default=30, ge=1, le=365 * 100)
    """Raw received mail and sent replies hold addresses: emptied after this (第4条(3))."""


class Bounces(Strict):
    """Bounce scoring (issue 6): GNU Mailman's threshold and stale period, Mailman 2.1's
    weights. A weight counts at most once per day; see bounces/score.py."""

    threshold: float = Field(default=5.0, gt=0)
    stale_days: int = Field(default=7, gt=0)
    permanent_weight: float = Field(default=1.0, ge=0)
    temporary_weight: float = Field(default=0.5, ge=0)
    unknown_weight: float = Field(default=0.5, ge=0)
    """A report to a valid VERP address that names no recipient we can read."""
    filtered: BounceFiltered = Field(default_factory=lambda: BounceFiltered())
    sender_alarm: SenderAlarm = Field(default_factory=lambda: SenderAlarm())


CARRIER_DOMAINS = (
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "au.com",
    "biz.ezweb.ne.jp",
    "softbank.ne.jp",
    "i.softbank.jp",
    "ymobile.ne.jp",
    "uqmobile.jp",
    "rakuten.jp",
)


class BounceFiltered(Strict):
    """A refusal says little about the address (issue 12, item 2), except a carrier's
    `filtered`: the subscriber's own 受信拒否設定 (domain filter) refuses the city's mail.
    Repeated over `span_days` (at least `times` refusals, the first and last that far
    apart) the subscription is disabled with that reason, never on one bad day."""

    domains: list[str] = Field(default_factory=lambda: list(CARRIER_DOMAINS))
    times: int = Field(default=3, gt=0)
    span_days: int = Field(default=7, ge=0, le=365)  # bounded: a date is taken 2× this back


class SenderAlarm(Strict):
    """Refusals that speak about us (our DKIM/SPF, our PTR, our reputation), counted per
    destination domain; past `threshold` within `window_minutes` the role holder (第4条(1):
    the クラウドサービス管理者 investigates failures) is mailed once per window."""

    reasons: list[str] = Field(
        default_factory=lambda: [
            "authfailure",
            "requireptr",
            "badreputation",
            "blocked",
            "spamdetected",
        ]
    )
    threshold: int = Field(default=20, gt=0)
    window_minutes: int = Field(default=60, gt=0, le=24 * 60 * 7)  # a timedelta: bounded
    role: Role = Role.CLOUD_ADMIN


class DomainLimit(Strict):
    """What one destination domain accepts from a bulk sender. Japanese carriers ask for
    few messages per SMTP session and a slow, steady rate; a burst gets the sender
    blocked. Unset fields fall back to the service-wide delivery settings."""

    recipients_per_connection: int | None = Field(default=None, gt=0)
    messages_per_minute: float | None = Field(default=None, gt=0)
    connections: int | None = Field(default=None, gt=0)


class Delivery(Strict):
    """How posts leave for the smarthost: overall concurrency and rate, per-domain limits."""

    connections: int = Field(default=8, gt=0)
    """Concurrent SMTP connections to the smarthost, each reused for many messages."""
    messages_per_second: float | None = Field(default=None, gt=0)
    """An overall rate cap; none by default."""
    recipients_per_connection: int | None = Field(default=None, gt=0)
    domains: dict[str, DomainLimit] = {}  # noqa: RUF012 (pydantic copies a default)
    """Limits per destination domain (lower-case); a subdomain follows its parent's."""
