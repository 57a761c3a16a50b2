"""The approval page of a held post: GET shows it with buttons, only a POST decides.

Link scanners open every link in a mail, so a GET never approves (issue 6). The token
says whom the page was sent to: the approver gets 配信する and 取り消す, the sender of a
post waiting for its 情報管理者 (`manager` mode) only 取り消す.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa
from aiohttp import web

from .. import urls
from ..commands import post as post_command
from ..context import Context
from ..posting import decisions
from ..store import posts
from ..store.engine import reading
from ..store.posts import PENDING, Post
from ..tokens import TOKEN_LEN, Purpose
from . import pages
from .peer import client_address
from .results import Channel


def _channel(ctx: Context, slug: str | None) -> Channel | None:
    found = ctx.registry.channels.get(slug) if slug else None
    return Channel(slug, found.value.title) if slug and found else None


def _invalid() -> web.Response:
    return pages.render(
        "result.html",
        status=400,
        heading="この確認は無効です",
        lines=("有効期限が切れているか、すでに処理されています。",),
        english="This link has expired or was used.",
        channel=None,
    )


def add_routes(
    routes: web.RouteTableDef,
    engine: sa.Engine,
    ctx_of: Callable[[], Context],
) -> None:
    def opened(request: web.Request) -> tuple[Purpose, int] | None:
        token = request.match_info["token"].lower()
        if len(token) != TOKEN_LEN:
            return None
        found = post_command.open_token(ctx_of(), token)
        return found if found and found[1] else None

    @routes.get(urls.route(urls.POST))
    async def post_page(request: web.Request) -> web.Response:
        found = opened(request)
        if found is None:
            return _invalid()
        purpose, post_id = found

        def look() -> Post | None:
            with reading(engine) as conn:
                return posts.get(conn, post_id)

        post = await asyncio.to_thread(look)
        if post is None or post.state not in PENDING:
            return _invalid()
        return pages.render(
            "post.html",
            channel=_channel(ctx_of(), post.channel),
            subject=post.subject,
            text=post.text,
            can_approve=purpose is Purpose.POST_APPROVE and post.state is posts.PostState.HELD,
        )

    @routes.post(urls.route(urls.POST))
    async def post_decide(request: web.Request) -> web.Response:
        found = opened(request)
        if found is None:
            return _invalid()
        purpose, post_id = found
        try:
            action = (await request.post()).get("action")
        except web.HTTPException:
            raise
        except (ValueError, LookupError, AssertionError, UnicodeError, RuntimeError):
            # a broken form (multipart boundary, encoding): answered, never a traceback
            return _invalid()
        ctx = ctx_of()
        who = f"web-button from {client_address(request)}"

        def decide(conn: sa.Connection, post: Post | None) -> decisions.Decided:
            if action == "withdraw":
                return decisions.withdraw(conn, ctx, post_id, by=who, method="web-button")
            if action == "approve" and purpose is Purpose.POST_APPROVE:
                by = post.sender if post else "?"
                if post is not None and post.approval == "manager":
                    department = ctx.registry.departments.get(
                        ctx.registry.channels[post.channel].value.department
                    )
                    by = department.manager.address if department else by
                return decisions.approve(conn, ctx, post_id, approver=by, method="web-button")
            return decisions.Decided.UNKNOWN

        def act() -> tuple[decisions.Decided, str | None]:
            with engine.begin() as conn:
                post = posts.get(conn, post_id)
                return decide(conn, post), post.channel if post else None

        result, slug = await asyncio.to_thread(act)
        if result is not decisions.Decided.DONE:
            return _invalid()
        done = "取り消しました" if action == "withdraw" else "承認しました"
        return pages.render(
            "result.html",
            heading=done,
            lines=(f"投稿を{done}。",),
            english="The post was withdrawn." if action == "withdraw" else "The post is approved.",
            channel=_channel(ctx, slug),
        )
