"""The citizen's pages of one channel: the confirm page and its button (double opt-in), the
unsubscribe page and the RFC 8058 one-click POST. Each names its channel.

A GET never changes anything: link scanners and mail security gateways open every link,
so a GET shows a page whose button POSTs. The one-click POST unsubscribes at once, without
cookies or confirmation, but only with the body RFC 8058 §3.1 names,
`List-Unsubscribe=One-Click`, sent as a form (urlencoded or multipart/form-data, §3.2):
a POST without it (a scanner that follows forms, a stray request) changes nothing and gets
400. The page's own button sends that body from a hidden input.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable

import sqlalchemy as sa
from aiohttp import web

from .. import urls
from ..clock import utcnow
from ..commands import membership
from ..context import Context, Outcome
from ..registry import ChannelState, State
from ..store import confirmations, subscribers
from ..store.engine import reading
from ..tokens import TOKEN_LEN, Purpose, Verdict
from . import pages
from .peer import client_address
from .results import Channel, result

log = logging.getLogger(__name__)

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
"""RFC 8058 §3.1: the one-click POST's body is `List-Unsubscribe=One-Click`."""

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
"""RFC 8058 §3.2: the body comes as a form, in either encoding."""


class OneClick(enum.Enum):
    """What the body of a one-click POST says (RFC 8058 §3.1)."""

    OK = "the body is List-Unsubscribe=One-Click"
    NOT_A_FORM = "the body is not a form (urlencoded or multipart/form-data)"
    UNREADABLE = "the form cannot be read"
    MISSING = "the form does not say List-Unsubscribe=One-Click"


async def one_click_body(request: web.Request) -> OneClick:
    """Read the body of a one-click POST. Too large a body is refused by aiohttp with 413
    before it is read (`HTTPRequestEntityTooLarge` passes through)."""
    if request.content_type not in FORM_TYPES:
        return OneClick.NOT_A_FORM
    try:
        form = await request.post()
    except web.HTTPException:
        raise
    except (ValueError, LookupError, AssertionError, UnicodeError, RuntimeError):
        # a broken multipart boundary, bad percent-encoding or an unknown charset: a
        # hostile or broken client, answered, never a traceback
        return OneClick.UNREADABLE
    if form.getall(ONE_CLICK_FIELD, []) != [ONE_CLICK_VALUE]:
        return OneClick.MISSING
    return OneClick.OK


def _token(request: web.Request) -> str | None:
    token = request.match_info["token"].lower()
    return token if len(token) == TOKEN_LEN else None


def _channel(ctx: Context, slug: str | None) -> Channel | None:
    found = ctx.registry.channels.get(slug) if slug else None
    return Channel(slug, found.value.title) if slug and found else None


def _pending(conn: sa.Connection, ctx: Context, token: str) -> confirmations.Pending | None:
    opened = ctx.keyring.open(Purpose.CONFIRM, token, utcnow())
    if opened.verdict is Verdict.INVALID:
        return None
    return confirmations.get(conn, opened.ident)


def _subscriber(conn: sa.Connection, ctx: Context, token: str) -> subscribers.Subscriber | None:
    opened = ctx.keyring.open(Purpose.UNSUBSCRIBE, token, utcnow())
    if opened.verdict is Verdict.INVALID:
        return None
    return subscribers.by_id(conn, opened.ident)


def add_routes(
    routes: web.RouteTableDef,
    engine: sa.Engine,
    ctx_of: Callable[[], Context],
    wake_sender: Callable[[], None],
) -> None:
    @routes.get(urls.route(urls.CONFIRM))
    async def confirm_page(request: web.Request) -> web.Response:
        token = _token(request)
        ctx = ctx_of()
        opened = ctx.keyring.open(Purpose.CONFIRM, token or "", utcnow())
        if token is None or opened.verdict is Verdict.INVALID:
            return result(Outcome.INVALID_TOKEN, None)

        def look() -> tuple[confirmations.Pending | None, Outcome | None]:
            with reading(engine) as conn:
                pending = confirmations.get(conn, opened.ident)
                used = pending is not None and pending.used_at is not None
                return pending, membership.settled(conn, pending) if pending and used else None

        pending, done = await asyncio.to_thread(look)
        if pending is None or pending.channel not in ctx.registry.channels:
            return result(Outcome.INVALID_TOKEN, None)
        channel = _channel(ctx, pending.channel)
        if done is not None:  # opened again after the button: say what holds
            return result(done, channel)
        if pending.used_at is not None or opened.verdict is Verdict.EXPIRED:
            return result(Outcome.EXPIRED, channel)
        subscribe = pending.action is confirmations.Action.SUBSCRIBE
        state = ctx.directory.states()[pending.channel]
        return pages.render(
            "confirm.html",
            heading=f"{'登録' if subscribe else '配信停止'}の確認",
            channel=channel,
            button="登録する" if subscribe else "配信を停止する",
            paused=subscribe and state.state is State.PAUSED,
            paused_until=_until(state),
        )

    @routes.post(urls.route(urls.CONFIRM))
    async def confirm_post(request: web.Request) -> web.Response:
        token = _token(request)
        if token is None:
            return result(Outcome.INVALID_TOKEN, None)
        ctx = ctx_of()
        peer = client_address(request)

        def act() -> tuple[Outcome, str | None]:
            with engine.begin() as conn:
                pending = _pending(conn, ctx, token)
                outcome = membership.confirm(
                    conn,
                    ctx,
                    token,
                    method="web-button",
                    evidence=f"web POST from {peer} at {utcnow().isoformat()}",
                    answer_to=None,
                )
                return outcome, pending.channel if pending else None

        outcome, slug = await asyncio.to_thread(act)
        wake_sender()
        return result(outcome, _channel(ctx, slug))

    @routes.get(urls.route(urls.UNSUBSCRIBE))
    async def unsubscribe_page(request: web.Request) -> web.Response:
        token = _token(request)
        ctx = ctx_of()
        if token is None:
            return result(Outcome.INVALID_TOKEN, None)

        def look() -> subscribers.Subscriber | None:
            with reading(engine) as conn:
                return _subscriber(conn, ctx, token)

        sub = await asyncio.to_thread(look)
        channel = _channel(ctx, sub.channel if sub else None)
        if sub is None or channel is None:
            return result(Outcome.INVALID_TOKEN, None)
        if sub.status is not subscribers.Status.ACTIVE:  # opened again after the button
            return result(Outcome.NOT_SUBSCRIBED, channel)
        return pages.render(
            "unsubscribe.html", channel=channel, field=ONE_CLICK_FIELD, value=ONE_CLICK_VALUE
        )

    @routes.post(urls.route(urls.UNSUBSCRIBE))
    async def unsubscribe_post(request: web.Request) -> web.Response:
        body = await one_click_body(request)
        if body is not OneClick.OK:
            log.info("one-click POST refused: %s", body.value)
            return pages.render("not_one_click.html", status=400, why=body.value)
        token = _token(request)
        if token is None:
            return result(Outcome.INVALID_TOKEN, None)
        ctx = ctx_of()

        def act() -> tuple[Outcome, str | None]:
            with engine.begin() as conn:
                sub = _subscriber(conn, ctx, token)
                slug = sub.channel if sub else None
                outcome = membership.unsubscribe_now(
                    conn, ctx, token, method="one-click", answer=False
                )
                return outcome, slug

        outcome, slug = await asyncio.to_thread(act)
        return result(outcome, _channel(ctx, slug))

    # the one-click URL that posts carry in List-Unsubscribe (delivery/render.py): short,
    # since some phones wrap long lines; the same page and RFC 8058 POST as above
    routes.get(urls.route(urls.ONE_CLICK))(unsubscribe_page)
    routes.post(urls.route(urls.ONE_CLICK))(unsubscribe_post)


def _until(state: ChannelState) -> str | None:
    until = state.pause.until if state.pause else None
    return f"{until.year}年{until.month}月{until.day}日" if until else None
