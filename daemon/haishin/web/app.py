"""aiohttp application: confirm page and button, RFC 8058 one-click unsubscribe, /healthz,
/metrics (Prometheus).

A GET never changes anything: link scanners and mail security gateways open every link,
so a GET shows a page whose button POSTs. The one-click POST (RFC 8058 §3.2, body
`List-Unsubscribe=One-Click`) unsubscribes at once, without cookies or confirmation.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from aiohttp import web

from ..commands import membership
from ..commands.context import Context, Outcome
from ..operations.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..operations.metrics import Metrics
from ..store import confirmations, queue, spool
from ..store.clock import utcnow
from ..store.engine import reading
from ..tokens import TOKEN_LEN, Purpose, Verdict
from . import posts as post_pages
from .peer import client_address

ContextSource = Callable[[], Context]

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
    ok = outcome in (Outcome.SUBSCRIBED, Outcome.UNSUBSCRIBED, Outcome.ALREADY_SUBSCRIBED)
    return _page(ja, f"<p>{html.escape(en)}</p>", 200 if ok else 400)


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

    @routes.get("/confirm/{token}")
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

    @routes.post("/confirm/{token}")
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

    @routes.get("/unsubscribe/{token}")
    async def unsubscribe_page(request: web.Request) -> web.Response:
        return _page(
            "配信停止",
            "<p>下のボタンを押すと配信を停止します。</p>"
            "<form method=post><input type=hidden name=List-Unsubscribe value=One-Click>"
            "<button type=submit>配信を停止する</button></form>"
            "<p lang=en>Press the button to unsubscribe.</p>",
        )

    @routes.post("/unsubscribe/{token}")
    async def unsubscribe_post(request: web.Request) -> web.Response:
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
    routes.get("/u/{token}")(unsubscribe_page)
    routes.post("/u/{token}")(unsubscribe_post)
    post_pages.add_routes(routes, engine, ctx_of, _page)

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

    app = web.Application(client_max_size=64 * 1024)
    app.add_routes(routes)
    if static is not None and static.is_dir():

        async def index(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(static / "index.html")

        app.router.add_get("/", index)
        app.router.add_static("/", static, show_index=False)
    return app
