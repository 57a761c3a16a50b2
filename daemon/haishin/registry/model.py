"""The registry's typed model: what each file of config/ may hold.

Field names are English (they are code's API); the values are Japanese where people
read them. Every model forbids unknown keys, so a misspelt key is a finding, not a value
silently ignored. Positions are kept beside the models (see `load.py`), not inside them.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ..clock import JST as JST  # re-exported: the registry's dates are Japanese

RULES_REVISED = dt.date(2021, 12, 24)
"""附則: the latest revision is in force from 2021-12-24; earlier registrations keep the
former rules, so no Form 1/2 record is required for them ("legacy" channels)."""


def _address(value: str) -> str:
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "email",
            "メールアドレスの形式が正しくありません: {address}（{reason}）",
            {"address": value, "reason": str(exc)},
        ) from None
    return info.normalized


def _aware(value: dt.datetime) -> dt.datetime:
    # The service runs in Japan: a time written without an offset is Japan time.
    return value if value.tzinfo else value.replace(tzinfo=JST)


Address = Annotated[str, AfterValidator(_address)]
Timestamp = Annotated[dt.datetime, AfterValidator(_aware)]
Text = Annotated[str, Field(min_length=1)]


class Role(enum.StrEnum):
    """The role holders named by the rules."""

    GENERAL_MANAGER = "general_manager"  # 統括管理者 (第3条)
    CLOUD_ADMIN = "cloud_admin"  # クラウドサービス管理者 (第4条)
    CMS_ADMIN = "cms_admin"  # 防災CMSを管理する者 (第9条)


ROLE_NAMES = {
    Role.GENERAL_MANAGER: "統括管理者",
    Role.CLOUD_ADMIN: "クラウドサービス管理者",
    Role.CMS_ADMIN: "防災CMS管理者",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(Strict):
    name: Text
    title: Text
    address: Address


class Category(Strict):
    id: Text
    name: Text
    description: str = ""


class Policy(Strict):
    """第3条(2): the basic requirements every post must meet."""

    max_size_kb: int = Field(default=512, gt=0)
    allow_html: bool = False
    allow_attachments: bool = False
    subject_max_length: int = Field(default=60, gt=0)
    subject_prefix: str = ""
    machine_dependent_chars: Literal["allow", "warn", "refuse"] = "warn"
    halfwidth_kana: Literal["allow", "warn", "refuse"] = "warn"
    footer: Text


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
    token_ttl_hours: int = Field(default=72, gt=0)
    held_post_ttl_hours: int = Field(default=72, gt=0)
    max_message_kb: int = Field(default=1024, gt=0)
    unsubscribed_retention_days: int = Field(default=180, ge=0)
    spool_retention_days: int = Field(default=30, ge=1)
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
    span_days: int = Field(default=7, ge=0)


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
    window_minutes: int = Field(default=60, gt=0)
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
    domains: dict[str, DomainLimit] = {}
    """Limits per destination domain (lower-case); a subdomain follows its parent's."""


class Service(Strict):
    """config/service.yaml: the service as a whole (第10条: settings, not code)."""

    name: Text
    operator: Text
    mail_domain: Text
    site_url: Text
    inquiry_address: Address  # 第3条(1): inquiries go to the 統括管理者
    disaster_info_url: Text  # 第1条: disaster and weather information lives elsewhere
    roles: dict[Role, Person]
    categories: list[Category] = Field(min_length=1)
    policy: Policy
    limits: Limits = Limits()
    bounces: Bounces = Bounces()
    delivery: Delivery = Delivery()
    dormant_after_days: int = Field(default=90, gt=0)  # 第5条4: a quiet channel (dormancy.py)


class Pause(Strict):
    """第3条5: the 統括管理者 may stop a department's (or a channel's) distribution."""

    since: dt.date
    by: Role
    reason: Text
    until: dt.date | None = None


class Contact(Strict):
    phone: str = ""
    address: Address | None = None
    hours: str = ""
    url: str = ""


class Department(Strict):
    """第2条(2) 情報配信課, headed by its 情報管理者 (第5条)."""

    name: Text
    manager: Person  # 情報管理者
    contact: Contact = Contact()
    paused: Pause | None = None


class Departments(Strict):
    departments: dict[str, Department] = Field(min_length=1)


class Approval(enum.StrEnum):
    CONFIRM = "confirm"  # the sender confirms each post
    MANAGER = "manager"  # the 情報管理者 approves each post
    AUTHENTICATED = "authenticated"  # a DKIM signature the daemon verified, aligned with From


class Channel(Strict):
    """config/channels/<slug>.yaml."""

    slug: Text
    title: Text
    summary: Text
    description: Text
    category: Text
    frequency: Text
    department: Text
    senders: list[Address] = Field(min_length=1)
    approval: Approval = Approval.CONFIRM
    archive: Literal["public", "private"] = "public"
    registered: dt.date
    application: str | None = None
    paused: Pause | None = None


class ApplicationKind(enum.StrEnum):  # Form 1 (第6条): what a department applies for
    START = "start"
    CHANGE = "change"
    STOP = "stop"


KIND_NAMES = dict(zip(ApplicationKind, ("利用開始", "変更", "利用停止"), strict=True))  # in order


class Applicant(Strict):
    name: Text
    title: Text


class Requested(Strict):
    """What Form 1 asks for; on approval the channel file must say the same."""

    title: str | None = None
    summary: str | None = None
    category: str | None = None
    frequency: str | None = None
    department: str | None = None
    purpose: str = ""


class Decision(Strict):
    """Form 2 (承認書): the 統括管理者's decision on one Form 1."""

    result: Literal["approved", "rejected"]
    date: dt.date
    by: Role
    notice_number: Text
    reason: str = ""


class Application(Strict):
    """config/applications/<number>.yaml: one Form 1 (利用等申請書) and its decision."""

    number: Text
    kind: ApplicationKind
    department: Text
    channel: Text
    applied: dt.date
    applicant: Applicant
    requested: Requested = Requested()
    decision: Decision | None = None

    @property
    def approved(self) -> bool:
        return self.decision is not None and self.decision.result == "approved"

    @property
    def rejected(self) -> bool:
        return self.decision is not None and self.decision.result == "rejected"


class Party(Strict):
    to: Role
    at: Timestamp


class Outage(Strict):
    """config/outages/<id>.yaml: a stop of the cloud service (第9条)."""

    id: Text
    kind: Literal["planned", "emergency"]
    stopped_by: Role
    reason: Text
    start: Timestamp
    end: Timestamp | None = None
    notice: Party | None = None  # 第9条2・4: advance notice of a planned stop
    report: Party | None = None  # 第9条2・4 ただし書: report after an emergency stop
    public_notice: str = ""
