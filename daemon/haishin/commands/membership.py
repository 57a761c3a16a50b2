"""Subscribe and unsubscribe: double opt-in by mail or web, immediate by token.

A subscription starts only when the address proves it reads its mail (a reply to the
confirmation, or the button on the confirmation page); From can be forged, so an
unsubscribe by plain mail is confirmed the same way. An unsubscribe token (from a post's
List-Unsubscribe) already proves receipt, so it acts at once (RFC 8058).
"""

from __future__ import annotations

import sqlalchemy as sa

from .. import addresses as contract
from .. import urls
from ..clock import utcnow
from ..context import Context, Outcome
from ..mailtext import texts
from ..outbound import ratelimit
from ..outbound.replies import reply
from ..registry import State
from ..store import confirmations, subscribers
from ..store.confirmations import Action
from ..store.states import MessageKind
from ..store.subscribers import Status, Subscriber
from ..tokens import Purpose, Verdict


def confirm_url(ctx: Context, token: str) -> str:
    return urls.at(ctx.public_url, urls.CONFIRM, token=token)


def unsubscribe_url(ctx: Context, token: str) -> str:
    return urls.at(ctx.public_url, urls.UNSUBSCRIBE, token=token)


SUBSCRIBABLE = frozenset({State.ACTIVE, State.PAUSED})
"""States in which an address may subscribe: the ones the daemon serves (registry/state.py
`served`); a paused channel holds its posts, not its subscribers (第3条5)."""


def _served_state(ctx: Context, slug: str) -> State:
    return ctx.directory.states()[slug].state


def _resumes(ctx: Context, slug: str) -> texts.Resumes | None:
    """When a paused channel resumes, for the texts that must say so; None if not paused."""
    state = ctx.directory.states()[slug]
    if state.state is not State.PAUSED:
        return None
    return texts.Resumes(state.pause.until if state.pause else None)


def _request(
    conn: sa.Connection,
    ctx: Context,
    slug: str,
    address: str,
    action: Action,
    origin: str,
    in_reply_to: str | None,
    *,
    existing: Subscriber | None,
    about: texts.About,
) -> Outcome:
    """`existing`: the caller's lookup of the address in this transaction (not read twice
    per request, bench/inbound_subscribe.py); `about`: the channel's texts, made once."""
    if not ratelimit.allowed(conn, ctx, address):
        return Outcome.RATE_LIMITED
    if action is Action.SUBSCRIBE and existing is None:
        # the pending row only once a request really goes out: a refused or forged
        # request leaves no address behind (第4条(3))
        subscribers.hold_pending(conn, slug, address)
    pending = confirmations.create(conn, slug, address, action, ctx.ttl, origin, ctx.network)
    token = ctx.keyring.make(Purpose.CONFIRM, pending.id, pending.expires_at)
    ttl_hours = ctx.service.limits.token_ttl_hours
    url = confirm_url(ctx, token)
    text = (
        texts.confirm_subscribe(about, token, url, ttl_hours, _resumes(ctx, slug))
        if action is Action.SUBSCRIBE
        else texts.confirm_unsubscribe(about, token, url, ttl_hours)
    )
    reply(
        conn,
        ctx,
        slug,
        address,
        text,
        reply_to=ctx.address(slug, contract.CONFIRM, token),
        in_reply_to=in_reply_to,
        kind=MessageKind.CONFIRM,
    )
    return Outcome.CONFIRMATION_SENT


def request_subscribe(
    conn: sa.Connection,
    ctx: Context,
    slug: str,
    address: str,
    *,
    origin: str,
    in_reply_to: str | None = None,
) -> Outcome:
    # 第3条5 holds a paused channel's posts, not its subscriptions: the site says 登録と
    # 解除は、停止中もできます, and the welcome says when posts resume (issue 14 item 4)
    state = _served_state(ctx, slug)
    about = ctx.about(slug)
    if state not in SUBSCRIBABLE:
        reply(conn, ctx, slug, address, texts.unavailable(about), in_reply_to=in_reply_to)
        return Outcome.UNAVAILABLE
    existing = subscribers.find(conn, slug, address)
    if existing is not None and existing.status is Status.ACTIVE:
        reply(conn, ctx, slug, address, texts.already_subscribed(about), in_reply_to=in_reply_to)
        return Outcome.ALREADY_SUBSCRIBED
    return _request(
        conn,
        ctx,
        slug,
        address,
        Action.SUBSCRIBE,
        origin,
        in_reply_to,
        existing=existing,
        about=about,
    )


def request_import(conn: sa.Connection, ctx: Context, slug: str, address: str) -> Outcome:
    """A staff import (`haishin subscribers import`): a confirmation request, as if the
    address had asked, but nobody asked, so nobody gets any other answer: an address
    that is subscribed, or has a request still open, is left alone and only reported."""
    state = _served_state(ctx, slug)
    if state is not State.ACTIVE:  # 第3条5: a paused department imports nobody for now
        return Outcome.PAUSED if state is State.PAUSED else Outcome.UNAVAILABLE
    existing = subscribers.find(conn, slug, address)
    if existing is not None and existing.status is Status.ACTIVE:
        return Outcome.ALREADY_SUBSCRIBED
    if confirmations.waiting(conn, slug, address, Action.SUBSCRIBE):
        return Outcome.ALREADY_PENDING
    return _request(
        conn,
        ctx,
        slug,
        address,
        Action.SUBSCRIBE,
        "import by staff",
        None,
        existing=existing,
        about=ctx.about(slug),
    )


def request_unsubscribe(
    conn: sa.Connection,
    ctx: Context,
    slug: str,
    address: str,
    *,
    origin: str,
    in_reply_to: str | None = None,
) -> Outcome:
    existing = subscribers.find(conn, slug, address)
    about = ctx.about(slug)
    if existing is None or existing.status is not Status.ACTIVE:
        reply(conn, ctx, slug, address, texts.not_subscribed(about), in_reply_to=in_reply_to)
        return Outcome.NOT_SUBSCRIBED
    return _request(
        conn,
        ctx,
        slug,
        address,
        Action.UNSUBSCRIBE,
        origin,
        in_reply_to,
        existing=existing,
        about=about,
    )


def confirm(
    conn: sa.Connection,
    ctx: Context,
    token: str,
    *,
    method: str,
    evidence: str,
    answer_to: str | None,
    in_reply_to: str | None = None,
    slug_hint: str | None = None,
) -> Outcome:
    """Carry out a pending action. `answer_to` is None when the caller shows the result
    itself (the web page); expired and invalid tokens then get no mail either."""
    opened = ctx.keyring.open(Purpose.CONFIRM, token, utcnow())
    pending = (
        confirmations.get(conn, opened.ident) if opened.verdict is not Verdict.INVALID else None
    )
    if pending is None or pending.channel not in ctx.registry.channels:
        if answer_to and slug_hint:
            reply(
                conn,
                ctx,
                slug_hint,
                answer_to,
                texts.expired(ctx.about(slug_hint)),
                in_reply_to=in_reply_to,
            )
        return Outcome.INVALID_TOKEN
    slug = pending.channel
    about = ctx.about(slug)
    if opened.verdict is Verdict.EXPIRED or not confirmations.use(conn, pending.id):
        used = pending.used_at is not None or opened.verdict is Verdict.OK
        done = settled(conn, pending) if used else None
        if done is not None:
            # the button pressed twice, a reply sent twice: the work is done, say so
            if answer_to:
                reply(conn, ctx, slug, pending.address, _ALREADY[done](about))
            return done
        if answer_to:
            reply(conn, ctx, slug, answer_to, texts.expired(about), in_reply_to=in_reply_to)
        return Outcome.EXPIRED
    # The answer goes to the address that was asked, never to whoever used the token.
    if pending.action is Action.SUBSCRIBE:
        state = ctx.directory.states()[slug]
        if state.state not in SUBSCRIBABLE:
            reply(
                conn, ctx, slug, pending.address, texts.unavailable(about), in_reply_to=in_reply_to
            )
            return Outcome.UNAVAILABLE
        existing = subscribers.find(conn, slug, pending.address)
        if existing is not None and existing.status is Status.ACTIVE:
            reply(conn, ctx, slug, pending.address, texts.already_subscribed(about))
            return Outcome.ALREADY_SUBSCRIBED
        sub = subscribers.activate(conn, slug, pending.address, method=method, evidence=evidence)
        link = unsubscribe_url(ctx, ctx.unsubscribe_token(sub.id))
        welcome = texts.welcome(about, link, _resumes(ctx, slug))
        reply(conn, ctx, slug, pending.address, welcome, in_reply_to=in_reply_to)
        return Outcome.SUBSCRIBED
    existing = subscribers.find(conn, slug, pending.address)
    if existing is None or not subscribers.unsubscribe(conn, existing.id, method=method):
        reply(conn, ctx, slug, pending.address, texts.not_subscribed(about))
        return Outcome.NOT_SUBSCRIBED
    reply(conn, ctx, slug, pending.address, texts.goodbye(about), in_reply_to=in_reply_to)
    return Outcome.UNSUBSCRIBED


_ALREADY = {
    Outcome.ALREADY_SUBSCRIBED: texts.already_subscribed,
    Outcome.NOT_SUBSCRIBED: texts.not_subscribed,
}


def settled(conn: sa.Connection, pending: confirmations.Pending) -> Outcome | None:
    """What a confirmation already used has left in place, or None when that no longer
    holds (unsubscribed since, say): a second press then finds nothing done to show."""
    sub = subscribers.find(conn, pending.channel, pending.address)
    active = sub is not None and sub.status is Status.ACTIVE
    if pending.action is Action.SUBSCRIBE:
        return Outcome.ALREADY_SUBSCRIBED if active else None
    return None if active else Outcome.NOT_SUBSCRIBED


def unsubscribe_now(
    conn: sa.Connection, ctx: Context, token: str, *, method: str, answer: bool
) -> Outcome:
    """Unsubscribe by the per-recipient token at once (List-Unsubscribe, RFC 8058)."""
    opened = ctx.keyring.open(Purpose.UNSUBSCRIBE, token, utcnow())
    if opened.verdict is Verdict.INVALID:
        return Outcome.INVALID_TOKEN
    sub = subscribers.by_id(conn, opened.ident)
    if sub is None or sub.channel not in ctx.registry.channels:
        return Outcome.INVALID_TOKEN
    if opened.verdict is Verdict.EXPIRED:
        return Outcome.EXPIRED
    if not subscribers.unsubscribe(conn, sub.id, method=method):
        return Outcome.NOT_SUBSCRIBED
    if answer:
        reply(conn, ctx, sub.channel, sub.address, texts.goodbye(ctx.about(sub.channel)))
    return Outcome.UNSUBSCRIBED
