"""A change of address from the citizen's own page (issue 14).

The page (whose link proves the old mailbox) asks; a confirmation goes to the new address,
and nothing moves until the new address proves it reads its mail: a reply to that mail
(`mypage+<token>@`) or the button of its page. So the form cannot subscribe a stranger:
the stranger would have to confirm. Then every active subscription (and every one
stopped by bounces) moves, the old address
gets a notice, every link of the old address stops working, and the consent record keeps
both (the move row, and the new subscription's evidence naming the old address).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import addresses as contract
from .. import urls
from ..bounces.record import DISABLED_BY_FILTER, DISABLED_BY_SCORE
from ..clock import utcnow
from ..context import Context, Outcome
from ..mailtext import mypage as text
from ..mailtext.mailbox import mailbox
from ..outbound import ratelimit
from ..outbound.replies import service_reply
from ..store import mypage as store
from ..store import subscribers
from ..store.subscribers import Status, Subscriber, address_key
from ..tokens import Purpose, Verdict
from .mypage import link_url

MOVES_PER_LINK = 3
"""Changes one link may ask: a typo can be corrected, but one mailbox's link cannot be
used to mail confirmations to a list of strangers (each is also counted per address, per
client network and overall: ratelimit.py)."""

BOUNCED = frozenset({DISABLED_BY_SCORE, DISABLED_BY_FILTER})

MOVED_METHOD = "moved"
"""`unsubscribe_method` of the old address's rows; the new rows' `consent_method` is
`mypage-move`, their evidence names the old address and the move."""


class Asked(enum.StrEnum):
    SENT = "sent"  # the confirmation went to the new address
    NOT_AN_ADDRESS = "not-an-address"
    SAME = "same"  # the new address is the old one
    OURS = "ours"  # an address of the service itself: it would answer itself
    TOO_MANY = "too-many"  # MOVES_PER_LINK reached
    RATE_LIMITED = "rate-limited"


def move_url(ctx: Context, token: str) -> str:
    return urls.at(ctx.public_url, urls.ME_MOVE, token=token)


def _titles(ctx: Context, slugs: list[str]) -> list[str]:
    channels = ctx.registry.channels
    return [channels[s].value.title if s in channels else s for s in slugs]


def _movable(sub: Subscriber) -> bool:
    """Active, or stopped because mail to it bounced: the usual reason to change address
    (a carrier contract ended) is that the old one bounces. Not a subscription the staff
    removed or a complaint withdrew: that consent is gone."""
    if sub.status is Status.ACTIVE:
        return True
    return sub.status is Status.DISABLED and sub.unsubscribe_method in BOUNCED


def active(conn: sa.Connection, address: str) -> list[str]:
    """The channels a move would take along (`_movable`)."""
    subs = subscribers.of_address(conn, address)
    return sorted(s for s, sub in subs.items() if _movable(sub))


def request(conn: sa.Connection, ctx: Context, link: store.Link, written: str, peer: str) -> Asked:
    new = mailbox(written.strip()) if len(written) <= 320 else None
    if new is None or "@" not in new:
        return Asked.NOT_AN_ADDRESS
    if address_key(new) == address_key(link.address):
        return Asked.SAME
    if new.rpartition("@")[2].lower() == ctx.domain:
        return Asked.OURS
    if store.moves_of_link(conn, link.id) >= MOVES_PER_LINK:
        return Asked.TOO_MANY
    if not ratelimit.answer_allowed(conn, ctx, new):
        return Asked.RATE_LIMITED
    made = store.create_move(conn, link.id, link.address, new, ctx.ttl, peer)
    token = ctx.keyring.make(Purpose.MOVE, made.id, made.expires_at)
    service = ctx.service
    mail = text.move_confirm(
        service.name,
        service.site_url,
        service.inquiry_address,
        move_url(ctx, token),
        service.limits.token_ttl_hours,
        _titles(ctx, active(conn, link.address)),
    )
    reply_to = ctx.address(contract.MYPAGE, "", token)
    service_reply(conn, ctx, new, mail, reply_to=reply_to)
    return Asked.SENT


class Confirmed(enum.StrEnum):
    MOVED = "moved"
    EXPIRED = "expired"  # past its hours, already used, or the old address moved since
    INVALID = "invalid"


@dataclass
class Result:
    verdict: Confirmed
    moved: list[str] = field(default_factory=list)
    new_link: str | None = None  # the new address's own page


def open_move(conn: sa.Connection, ctx: Context, token: str) -> tuple[Confirmed, store.Move | None]:
    opened = ctx.keyring.open(Purpose.MOVE, token, utcnow())
    if opened.verdict is Verdict.INVALID:
        return Confirmed.INVALID, None
    found = store.move(conn, opened.ident)
    if found is None:
        return Confirmed.INVALID, None
    if opened.verdict is Verdict.EXPIRED or found.used_at is not None:
        return Confirmed.EXPIRED, found
    return Confirmed.MOVED, found


def confirm(
    conn: sa.Connection, ctx: Context, token: str, how: str, *, mail_welcome: bool
) -> Result:
    """Move every active (or bounced) subscription of the old address to the new one. `how`: the
    evidence of the confirmation (web button with client address, or the reply's
    inbound id). `mail_welcome`: the confirmation came by mail, so the new address is told
    by mail (the web page shows it instead)."""
    verdict, move = open_move(conn, ctx, token)
    if verdict is not Confirmed.MOVED or move is None:
        return Result(verdict)
    if not store.use_move(conn, move.id, how):
        return Result(Confirmed.EXPIRED)
    old, new = move.old_address, move.new_address
    # first: a link to the old address stops working, exactly. Its rows are locked by a
    # save of the old page in progress (store.link), so this waits for that save and then
    # moves what it subscribed; a save after this finds its link revoked (410)
    store.revoke_links(conn, old)
    evidence = f"address change #{move.id} from {old}, confirmed by {how}"
    moved: list[str] = []
    for slug, sub in sorted(subscribers.of_address(conn, old).items()):
        if not _movable(sub):
            continue
        there = subscribers.find(conn, slug, new)
        if there is None or there.status is not Status.ACTIVE:
            subscribers.activate(conn, slug, new, method="mypage-move", evidence=evidence)
        subscribers.unsubscribe(conn, sub.id, method=MOVED_METHOD)
        moved.append(slug)
    store.void_moves_from(conn, old)
    service = ctx.service
    titles = _titles(ctx, moved)
    if ratelimit.answer_allowed(conn, ctx, old):
        notice = text.moved_notice(
            service.name, service.site_url, service.inquiry_address, text.mask(new), titles
        )
        service_reply(conn, ctx, old, notice)
    made = store.create_link(conn, new, ctx.mypage_ttl)
    url = link_url(ctx, ctx.keyring.make(Purpose.MYPAGE, made.id, made.expires_at))
    if mail_welcome and ratelimit.answer_allowed(conn, ctx, new):
        welcome = text.moved_welcome(
            service.name, service.site_url, service.inquiry_address, url, titles
        )
        service_reply(conn, ctx, new, welcome)
    return Result(Confirmed.MOVED, moved, url)


def by_mail(
    conn: sa.Connection, ctx: Context, token: str, sender: str, origin: str, in_reply_to: str | None
) -> Outcome:
    """A reply to `mypage+<token>@`: confirm, or tell the sender the change is no longer
    open (the button was pressed first, a second reply), as the web page would; a reply
    is never dropped unanswered. A forged token was refused at RCPT or by the router."""
    done = confirm(conn, ctx, token, f"mail reply {origin}", mail_welcome=True)
    if done.verdict is Confirmed.MOVED:
        return Outcome.MOVED
    if done.verdict is Confirmed.INVALID:
        return Outcome.NOT_ANSWERED
    if not ratelimit.answer_allowed(conn, ctx, sender):
        return Outcome.RATE_LIMITED
    service = ctx.service
    gone = text.move_gone(service.name, service.site_url, service.inquiry_address)
    service_reply(conn, ctx, sender, gone, in_reply_to=in_reply_to)
    return Outcome.EXPIRED
