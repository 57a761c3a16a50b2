"""aiohttp application: the citizen's pages (membership.py), held posts (posts.py), /healthz,
/metrics (Prometheus), and the built site when the daemon serves it (`--static`). Every
HTML page is rendered in the site's look (pages.py), showing the registry of the moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from aiohttp import web
from aiohttp.typedefs import Middleware

from .. import urls
from ..context import Context
from ..operations.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..operations.metrics import Metrics
from ..store import queue, spool
from ..store.engine import reading
from . import membership, pages
from . import mypage as mypage_pages
from . import posts as post_pages

ContextSource = Callable[[], Context]

MAX_BODY = 64 * 1024
"""Bytes of a request body (aiohttp's `client_max_size`); more gets 413 unread."""


def build(
    engine: sa.Engine,
    ctx_of: ContextSource,
    wake_sender: Callable[[], None],
    static: Path | None,
    metrics: Metrics | None = None,
) -> web.Application:
    routes = web.RouteTableDef()
    serves_site = static is not None and static.is_dir()

    def site() -> pages.Site:
        ctx = ctx_of()
        return pages.site_of(ctx.service, ctx.public_url, serves_site=serves_site)

    if metrics is not None:

        @routes.get("/metrics")
        async def prometheus(request: web.Request) -> web.Response:
            # the collector reads the database: off the event loop (style.md 9)
            body = await asyncio.to_thread(metrics.render)
            return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    membership.add_routes(routes, engine, ctx_of, wake_sender)
    post_pages.add_routes(routes, engine, ctx_of)
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

    middlewares = [pages.themed(site)]
    if static is not None and serves_site:
        middlewares.append(_missing_file(static))
    app = web.Application(client_max_size=MAX_BODY, middlewares=middlewares)
    app.add_routes(routes)
    if static is not None and serves_site:

        async def index(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(static / urls.INDEX)

        app.router.add_get("/", index)
        app.router.add_static("/", static, show_index=False)
    return app


def _missing_file(static: Path) -> Middleware:
    """A site page that does not exist: aiohttp's static route answers 404 with an empty
    body (FileResponse finds out only while sending); raised here instead, so that `themed`
    answers the 404 page in Japanese. Only a look: aiohttp still resolves the path and
    keeps it inside `static`, and a path outside is 404 either way."""

    @web.middleware
    async def middleware(request: web.Request, handler: pages.Handler) -> web.StreamResponse:
        if isinstance(request.match_info.route.resource, web.StaticResource):
            found = static / request.match_info.get("filename", "")
            if not await asyncio.to_thread(lambda: found.exists()):
                raise web.HTTPNotFound()
        return await handler(request)

    return middleware
