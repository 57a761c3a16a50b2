"""The citizen's own page (issue 14): the link mailed in answer to `mypage@` (or the
command 一覧 at `<slug>-request@`), and what the page shows and does.

The token in the link is the proof of the mailbox: it was mailed to the address and only
there, so saving the page subscribes at once (the consent record says "mypage", with the
time and the client address), like the button of a confirmation page. The link row names
the one address the page shows and changes; nothing a request carries can name another.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import urls
from ..bounces.record import DISABLED_BY_FILTER, DISABLED_BY_SCORE, WITHDRAWN_BY_COMPLAINT
from ..clock import utcnow
from ..context import Context, Outcome
from ..mailtext import mypage as text
from ..outbound import ratelimit
from ..outbound.replies import reply, service_reply
from ..registry import State
from ..store import mypage as store
from ..store import subscribers
from ..store.states import MessageKind
from ..store.subscribers import Status, Subscriber
from ..tokens import Purpose, Verdict

METHOD = "mypage"
"""The consent record's `consent_method` and `unsubscribe_method` for the page's changes."""


def link_url(ctx: Context, token: str) -> str:
    return urls.at(ctx.public_url, urls.ME, token=token)


def send_link(
    conn: sa.Connection,
    ctx: Context,
    address: str,
    *,
    slug: str | None = None,
    in_reply_to: str | None = None,
) -> Outcome:
    """Answer `address` (the sender, as every command answers: mailtext/incoming.py) with a
    new link. Counted as an automatic answer before the link is made (ratelimit.py: per
    address, per client network, overall), so a flood leaves no rows and no mail."""
    if not ratelimit.answer_allowed(conn, ctx, address):
        return Outcome.RATE_LIMITED
    made = store.create_link(conn, address, ctx.mypage_ttl)
    token = ctx.keyring.make(Purpose.MYPAGE, made.id, made.expires_at)
    service = ctx.service
    mail = text.link(
        service.name,
        service.site_url,
        service.inquiry_address,
        link_url(ctx, token),
        service.limits.mypage_link_ttl_hours,
        address,
    )
    if slug is None:
        service_reply(conn, ctx, address, mail, in_reply_to=in_reply_to)
    else:  # asked at <slug>-request@: answered from there, like the channel's other commands
        reply(conn, ctx, slug, address, mail, in_reply_to=in_reply_to, kind=MessageKind.CONFIRM)
    return Outcome.MYPAGE_SENT


class LinkVerdict(enum.StrEnum):
    OK = "ok"
    EXPIRED = "expired"  # past its hours, or the address moved away since
    INVALID = "invalid"  # not a token we made for a page


def open_link(
    conn: sa.Connection, ctx: Context, token: str, *, to_change: bool = False
) -> tuple[LinkVerdict, store.Link | None]:
    """`to_change`: the caller will change the address's subscriptions in this
    transaction; the link's row is locked against a change of address (store.link)."""
    opened = ctx.keyring.open(Purpose.MYPAGE, token, utcnow())
    if opened.verdict is Verdict.INVALID:
        return LinkVerdict.INVALID, None
    found = store.link(conn, opened.ident, lock=to_change)
    if found is None:
        return LinkVerdict.INVALID, None
    if opened.verdict is Verdict.EXPIRED or not found.usable(utcnow()):
        return LinkVerdict.EXPIRED, None
    return LinkVerdict.OK, found


class Standing(enum.StrEnum):
    """One channel as the page shows it for the address."""

    ACTIVE = "active"
    NONE = "none"
    PENDING = "pending"  # asked by mail, not confirmed
    UNSUBSCRIBED = "unsubscribed"
    DISABLED = "disabled"


_DISABLED_WHY = {
    DISABLED_BY_SCORE: "配信エラーが続いたため、配信を止めています",
    DISABLED_BY_FILTER: "受信拒否設定（迷惑メールフィルター）で届かないため、配信を止めています",
    WITHDRAWN_BY_COMPLAINT: "迷惑メールとして報告されたため、配信を止めています",
    "staff": "担当課の判断で配信を止めています",
}


@dataclass(frozen=True)
class Row:
    slug: str
    title: str
    standing: Standing
    notes: list[str]  # its state in words: paused, disabled with the reason, pending

    @property
    def checked(self) -> bool:
        return self.standing is Standing.ACTIVE


@dataclass(frozen=True)
class Group:
    name: str
    rows: list[Row]


def _standing(sub: Subscriber | None) -> tuple[Standing, list[str]]:
    if sub is None:
        return Standing.NONE, []
    if sub.status is Status.ACTIVE:
        return Standing.ACTIVE, []
    if sub.status is Status.PENDING:
        return Standing.PENDING, ["確認待ち（確認メールへの返信がまだです）"]
    if sub.status is Status.DISABLED:
        why = _DISABLED_WHY.get(sub.unsubscribe_method or "", "配信を止めています")
        return Standing.DISABLED, [why + "。チェックして保存すると再開します"]
    return Standing.UNSUBSCRIBED, []


def served(ctx: Context) -> list[str]:
    """The channels the page offers: exactly those the daemon serves (第7条)."""
    return [slug for slug, state in ctx.directory.states().items() if state.served]


def page(conn: sa.Connection, ctx: Context, address: str) -> list[Group]:
    """Every served channel grouped by category as on the site (site/view.py)."""
    subs = subscribers.of_address(conn, address)
    states = ctx.directory.states()
    rows: dict[str, list[Row]] = {}
    for slug in served(ctx):
        channel = ctx.registry.channels[slug].value
        standing, notes = _standing(subs.get(slug))
        if states[slug].state is State.PAUSED:
            notes = ["現在、配信を一時停止しています（登録はできます）", *notes]
        rows.setdefault(channel.category, []).append(Row(slug, channel.title, standing, notes))
    return [
        Group(c.name, sorted(rows[c.id], key=lambda r: (r.title, r.slug)))
        for c in ctx.service.categories
        if c.id in rows
    ]


@dataclass
class Changes:
    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)


def save(
    conn: sa.Connection, ctx: Context, link: store.Link, chosen: set[str], peer: str
) -> Changes:
    """Subscribe `link.address` to the chosen served channels at once and unsubscribe it
    from the others. `chosen` must hold served slugs only (the web layer refuses the
    rest, changing nothing)."""
    changes = Changes()
    subs = subscribers.of_address(conn, link.address)
    evidence = f"mypage link #{link.id}: web POST from {peer} at {utcnow().isoformat()}"
    for slug in served(ctx):
        sub = subs.get(slug)
        active = sub is not None and sub.status is Status.ACTIVE
        if slug in chosen and not active:
            # a paused channel too: its posts wait, the subscription starts now (第3条5)
            subscribers.activate(conn, slug, link.address, method=METHOD, evidence=evidence)
            changes.subscribed.append(slug)
        elif slug not in chosen and active:
            assert sub is not None
            subscribers.unsubscribe(conn, sub.id, method=METHOD)
            changes.unsubscribed.append(slug)
    return changes


def leave_all(conn: sa.Connection, ctx: Context, link: store.Link) -> Changes:
    """End every active subscription of the address, served or not."""
    changes = Changes()
    for slug, sub in subscribers.of_address(conn, link.address).items():
        if sub.status is Status.ACTIVE and subscribers.unsubscribe(conn, sub.id, method=METHOD):
            changes.unsubscribed.append(slug)
    return changes
