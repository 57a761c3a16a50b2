"""The registry's typed model: what each file of config/ may hold.

Field names are English (they are code's API); the values are Japanese where people
read them. Every model forbids unknown keys, so a misspelt key is a finding, not a value
silently ignored. Positions are kept beside the models (see `load.py`), not inside them.
The shared field types (`basics.py`) and service.yaml's operating settings
(`service_limits.py`) live in their own modules and are re-exported here: the model is
what the rest of the package imports.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

from pydantic import Field

from ..clock import JST as JST  # re-exported: the registry's dates are Japanese
from .basics import ROLE_NAMES as ROLE_NAMES
from .basics import Address as Address
from .basics import Role as Role
from .basics import Strict as Strict
from .basics import Text as Text
from .basics import Timestamp as Timestamp
from .service_limits import CARRIER_DOMAINS as CARRIER_DOMAINS
from .service_limits import AnswerLimits as AnswerLimits
from .service_limits import BounceFiltered as BounceFiltered
from .service_limits import Bounces as Bounces
from .service_limits import Cap as Cap
from .service_limits import ClientNetworks as ClientNetworks
from .service_limits import Delivery as Delivery
from .service_limits import DomainLimit as DomainLimit
from .service_limits import Limits as Limits
from .service_limits import SenderAlarm as SenderAlarm

RULES_REVISED = dt.date(2021, 12, 24)
"""附則: the latest revision is in force from 2021-12-24; earlier registrations keep the
former rules, so no Form 1/2 record is required for them ("legacy" channels)."""


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
    # 第9条2・4 say only 事前に: days before a planned stop's start the daemon notifies (第10条)
    outage_notice_days: int = Field(default=7, ge=1, le=90)
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
