"""What the site shows, computed from the registry: plain data for the templates.

Only public matters go here (第7条 "基本的な事項"): no sender addresses, no personal
names; the 情報管理者 is shown by title, with the department's public contact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .. import addresses, urls
from ..registry import Registry, State, channel_states
from ..registry.model import JST, Contact, Outage, Pause


@dataclass(frozen=True)
class ChannelView:
    slug: str
    title: str
    summary: str
    description: str
    category_id: str
    category: str
    department_id: str
    department: str
    manager_title: str
    contact: Contact
    frequency: str
    archive_public: bool
    paused: Pause | None
    subscribe: str
    unsubscribe: str
    owner: str
    request: str

    @property
    def url(self) -> str:
        return urls.CHANNEL.format(slug=self.slug)

    @property
    def mailto(self) -> str:
        # An empty mail is enough to subscribe (空メール登録), so no subject or body.
        return f"mailto:{self.subscribe}"

    @property
    def qr(self) -> str:
        return urls.CHANNEL_QR.format(slug=self.slug)

    @property
    def backnumbers_url(self) -> str:
        return urls.BACKNUMBERS.format(slug=self.slug)

    @property
    def feed(self) -> str:
        return urls.CHANNEL_FEED.format(slug=self.slug)


@dataclass(frozen=True)
class Group:
    """Channels under one heading: a category or a department."""

    id: str
    name: str
    description: str
    channels: list[ChannelView]
    contact: Contact | None = None


@dataclass(frozen=True)
class Notice:
    """One stop of the service (第9条) as the public reads it."""

    id: str
    planned: bool
    start: dt.datetime
    end: dt.datetime | None
    text: str
    status: str
    """予定 (not yet begun), 停止中 (in force) or 終了 (over)."""

    @property
    def upcoming_or_current(self) -> bool:
        return self.status != "終了"


@dataclass(frozen=True)
class SiteView:
    service_name: str
    operator: str
    mail_domain: str
    site_url: str
    inquiry_address: str
    disaster_info_url: str
    token_ttl_hours: int
    unsubscribed_retention_days: int
    channels: list[ChannelView]
    by_category: list[Group]
    by_department: list[Group]
    notices: list[Notice] = field(default_factory=list)
    mypage: str = ""
    mypage_ttl_hours: int = 24
    """`mypage@`: an empty mail brings a link to the citizen's own page (issue 14)."""

    @property
    def mypage_mailto(self) -> str:
        return f"mailto:{self.mypage}"

    @property
    def mypage_qr(self) -> str:
        return urls.MYPAGE_QR

    @property
    def current_notices(self) -> list[Notice]:
        return [n for n in self.notices if n.upcoming_or_current]


def _notice_text(outage: Outage) -> str:
    if outage.public_notice.strip():
        return outage.public_notice.strip()
    what = "保守作業" if outage.kind == "planned" else "障害"
    return f"{what}のため、メール配信サービスを停止します（停止しました）。"


def notices(reg: Registry, now: dt.datetime) -> list[Notice]:
    """第9条: every recorded stop, newest first, with where it stands at `now`."""
    out = []
    for located in reg.outages.values():
        o = located.value
        if now < o.start:
            status = "予定"
        elif o.end is None or now < o.end:
            status = "停止中"
        else:
            status = "終了"
        start = o.start.astimezone(JST)
        end = o.end.astimezone(JST) if o.end else None
        out.append(Notice(o.id, o.kind == "planned", start, end, _notice_text(o), status))
    return sorted(out, key=lambda n: (n.start, n.id), reverse=True)


def build(reg: Registry, now: dt.datetime) -> SiteView:
    """The site's data. `reg` must be valid (load_valid): references are trusted."""
    assert reg.service is not None
    service = reg.service.value
    domain = service.mail_domain
    categories = {c.id: c for c in service.categories}
    states = channel_states(reg, now.astimezone(JST).date())

    channels = []
    for slug, located in reg.channels.items():
        state = states[slug]
        if not state.listed:  # 第7条: only what is approved and served is published
            continue
        ch = located.value
        dept = reg.departments[ch.department]
        channels.append(
            ChannelView(
                slug=slug,
                title=ch.title,
                summary=ch.summary.strip(),
                description=ch.description.strip(),
                category_id=ch.category,
                category=categories[ch.category].name,
                department_id=ch.department,
                department=dept.name,
                manager_title=dept.manager.title,
                contact=dept.contact,
                frequency=ch.frequency,
                archive_public=ch.archive == "public",
                paused=state.pause if state.state is State.PAUSED else None,
                subscribe=addresses.of(slug, addresses.SUBSCRIBE, domain),
                unsubscribe=addresses.of(slug, addresses.UNSUBSCRIBE, domain),
                owner=addresses.of(slug, addresses.OWNER, domain),
                request=addresses.of(slug, addresses.REQUEST, domain),
            )
        )
    channels.sort(key=lambda c: (c.title, c.slug))

    by_category = [
        Group(c.id, c.name, c.description, [ch for ch in channels if ch.category_id == c.id])
        for c in service.categories
    ]
    by_department = [
        Group(
            dept_id,
            dept.name,
            "",
            [ch for ch in channels if ch.department_id == dept_id],
            dept.contact,
        )
        for dept_id, dept in reg.departments.items()
    ]
    return SiteView(
        service_name=service.name,
        operator=service.operator,
        mail_domain=domain,
        site_url=service.site_url.rstrip("/"),
        inquiry_address=service.inquiry_address,
        disaster_info_url=service.disaster_info_url,
        token_ttl_hours=service.limits.token_ttl_hours,
        unsubscribed_retention_days=service.limits.unsubscribed_retention_days,
        channels=channels,
        by_category=[g for g in by_category if g.channels],
        by_department=[g for g in by_department if g.channels],
        notices=notices(reg, now),
        mypage=addresses.of(addresses.MYPAGE, "", domain),
        mypage_ttl_hours=service.limits.mypage_link_ttl_hours,
    )
