"""aiohttp application: confirm page and button, RFC 8058 one-click unsubscribe, /healthz,
/metrics (Prometheus).

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
import html
import logging
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from aiohttp import web

from .. import urls
from ..clock import utcnow
from ..commands import membership
from ..context import Context, Outcome
from ..operations.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..operations.metrics import Metrics
from ..store import confirmations, queue, spool
from ..store.engine import reading
from ..tokens import TOKEN_LEN, Purpose, Verdict
from . import mypage as mypage_pages
from . import posts as post_pages
from .peer import client_address

log = logging.getLogger(__name__)

ContextSource = Callable[[], Context]

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
"""RFC 8058 §3.1: the one-click POST's body is `List-Unsubscribe=One-Click`."""

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
"""RFC 8058 §3.2: the body comes as a form, in either encoding."""

MAX_BODY = 64 * 1024
"""Bytes of a request body (aiohttp's `client_max_size`); more gets 413 unread."""


class OneClick(enum.Enum):
    """What the body of a one-click POST says (RFC 8058 §3.1)."""

    OK = "the body is List-Unsubscribe=One-Click"
    NOT_A_FORM = "the body is not a form (urlencoded or multipart/form-data)"
    UNREADABLE = "the form cannot be read"
    MISSING = "the form does not say List-Unsubscribe=One-Click"


_RESULT = {
    Outcome.SUBSCRIBED: ("登録が完了しました", "Your subscription is confirmed."),
    Outcome.UNSUBSCRIBED: ("配信を停止しました", "You have been unsubscribed."),
    Outcome.ALREADY_SUBSCRIBED: ("すでに登録されています", "Already subscribed."),
    Outcome.NOT_SUBSCRIBED: ("登録されていません", "Not subscribed."),
    Outcome.EXPIRED: (
        "有効期限が切れているか、すでに使われています",
        "This link has expired or was used.",
    ),
    Outcome.INVALID_TOKEN: ("このリンクは無効です", "This link is not valid."),
    Outcome.PAUSED: ("現在、配信を一時停止しています", "This channel is paused."),
}


_STATUS = {
    Outcome.SUBSCRIBED: 200,
    Outcome.UNSUBSCRIBED: 200,
    Outcome.ALREADY_SUBSCRIBED: 200,
    Outcome.NOT_SUBSCRIBED: 200,  # what the person wants already holds
    Outcome.EXPIRED: 410,  # Gone: it was valid once
    Outcome.INVALID_TOKEN: 404,  # no such link
}
"""HTTP status per outcome; any other is 400."""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<meta name=robots content=noindex>"
        f"<title>{html.escape(title)}</title><body><main><h1>{html.escape(title)}</h1>"
        f"{body}</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _result(outcome: Outcome) -> web.Response:
    ja, en = _RESULT.get(outcome, ("受け付けました", "Done."))
    return _page(ja, f"<p>{html.escape(en)}</p>", _STATUS.get(outcome, 400))


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


def _not_one_click(why: OneClick) -> web.Response:
    return _page(
        "配信停止の手続きができませんでした",
        "<p>このリンクの配信停止は、配信停止のページのボタンから行ってください。"
        "何も変わっていません。</p>"
        f"<p lang=en>Nothing changed: {html.escape(why.value)} (RFC 8058).</p>",
        400,
    )


def _unsubscribe_form() -> str:
    # the hidden input makes the button's POST the RFC 8058 body
    return (
        "<form method=post>"
        f"<input type=hidden name={ONE_CLICK_FIELD} value={ONE_CLICK_VALUE}>"
        "<button type=submit>配信を停止する</button></form>"
    )


def _token(request: web.Request) -> str | None:
    token = request.match_info["token"].lower()
    return token if len(token) == TOKEN_LEN else None


def build(
    engine: sa.Engine,
    ctx_of: ContextSource,
    wake_sender: Callable[[], None],
    static: Path | None,
    metrics: Metrics | None = None,
) -> web.Application:
    routes = web.RouteTableDef()

    if metrics is not None:

        @routes.get("/metrics")
        async def prometheus(request: web.Request) -> web.Response:
            # the collector reads the database: off the event loop (style.md 9)
            body = await asyncio.to_thread(metrics.render)
            return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    @routes.get(urls.route(urls.CONFIRM))
    async def confirm_page(request: web.Request) -> web.Response:
        token = _token(request)
        ctx = ctx_of()
        opened = ctx.keyring.open(Purpose.CONFIRM, token or "", utcnow())
        if token is None or opened.verdict is not Verdict.OK:
            return _result(
                Outcome.EXPIRED if opened.verdict is Verdict.EXPIRED else Outcome.INVALID_TOKEN
            )

        def look() -> confirmations.Pending | None:
            with reading(engine) as conn:
                return confirmations.get(conn, opened.ident)

        pending = await asyncio.to_thread(look)
        if (
            pending is None
            or pending.used_at is not None
            or pending.channel not in ctx.registry.channels
        ):
            return _result(Outcome.EXPIRED)
        title = ctx.registry.channels[pending.channel].value.title
        subscribe = pending.action is confirmations.Action.SUBSCRIBE
        what = "登録する" if subscribe else "配信を停止する"
        heading = f"「{title}」の{'登録' if subscribe else '配信停止'}の確認"
        form = (
            f"<p>下のボタンを押すと手続きが完了します。お申し込みに心当たりがなければ、"
            f"このページを閉じてください。何も変わりません。</p>"
            f"<form method=post><button type=submit>{what}</button></form>"
            f"<p lang=en>Press the button to confirm; if you did not ask, close this page.</p>"
        )
        return _page(heading, form)

    @routes.post(urls.route(urls.CONFIRM))
    async def confirm_post(request: web.Request) -> web.Response:
        token = _token(request)
        if token is None:
            return _result(Outcome.INVALID_TOKEN)
        ctx = ctx_of()
        peer = client_address(request)

        def act() -> Outcome:
            with engine.begin() as conn:
                return membership.confirm(
                    conn,
                    ctx,
                    token,
                    method="web-button",
                    evidence=f"web POST from {peer} at {utcnow().isoformat()}",
                    answer_to=None,
                )

        outcome = await asyncio.to_thread(act)
        wake_sender()
        return _result(outcome)

    @routes.get(urls.route(urls.UNSUBSCRIBE))
    async def unsubscribe_page(request: web.Request) -> web.Response:
        token = _token(request)
        verdict = ctx_of().keyring.open(Purpose.UNSUBSCRIBE, token or "", utcnow()).verdict
        if token is None or verdict is Verdict.INVALID:
            return _result(Outcome.INVALID_TOKEN)
        return _page(
            "配信停止",
            "<p>下のボタンを押すと配信を停止します。</p>"
            + _unsubscribe_form()
            + "<p lang=en>Press the button to unsubscribe.</p>",
        )

    @routes.post(urls.route(urls.UNSUBSCRIBE))
    async def unsubscribe_post(request: web.Request) -> web.Response:
        body = await one_click_body(request)
        if body is not OneClick.OK:
            log.info("one-click POST refused: %s", body.value)
            return _not_one_click(body)
        token = _token(request)
        if token is None:
            return _result(Outcome.INVALID_TOKEN)
        ctx = ctx_of()

        def act() -> Outcome:
            with engine.begin() as conn:
                return membership.unsubscribe_now(
                    conn, ctx, token, method="one-click", answer=False
                )

        outcome = await asyncio.to_thread(act)
        return _result(outcome)

    # the one-click URL that posts carry in List-Unsubscribe (delivery/render.py): short,
    # since some phones wrap long lines; the same page and RFC 8058 POST as above
    routes.get(urls.route(urls.ONE_CLICK))(unsubscribe_page)
    routes.post(urls.route(urls.ONE_CLICK))(unsubscribe_post)
    post_pages.add_routes(routes, engine, ctx_of, _page)
    mypage_pages.add_routes(routes, engine, ctx_of, wake_sender)

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        def look() -> dict[str, dict[str, int]]:
            with reading(engine) as conn:
                conn.execute(sa.text("SELECT 1"))
            return {"inbound": spool.counts(engine), "outbound": queue.counts(engine)}

        try:
            counts = await asyncio.to_thread(look)
        except sa.exc.SQLAlchemyError as exc:
            return web.json_response({"status": "error", "database": str(exc)[:200]}, status=503)
        return web.json_response({"status": "ok", **counts})

    app = web.Application(client_max_size=MAX_BODY)
    app.add_routes(routes)
    if static is not None and static.is_dir():

        async def index(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(static / urls.INDEX)

        app.router.add_get("/", index)
        app.router.add_static("/", static, show_index=False)
    return app
