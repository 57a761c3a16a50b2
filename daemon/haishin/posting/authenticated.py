"""The `authenticated` approval mode, second step: verify the post's DKIM signature, then
approve it or ask for approval.

The worker stores an `authenticated` post as held with the note VERIFYING and nothing
else (commands/post.py); this task verifies it outside any database transaction (the DNS
lookup must not hold SQLite's write lock while other mail waits to be stored), then in one
short transaction records the result with the post (its findings) and either approves it
(approval_method `authenticated:dkim`) or sends the `confirm` request with the reason.

A temporary DNS failure falls back to the confirm request at once rather than retrying:
the post keeps its time (第5条: the 情報管理者 answers for timing as well as content), a
person's approval is always good enough, and nothing an attacker does to our resolver can
turn into an approval; the post stays held, never refused. The conditional update on the
note makes the decision once even when several daemons share a PostgreSQL database, and a
restart finds still-pending posts again (第8条).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import sqlalchemy as sa

from .. import addresses
from ..context import Context
from ..store import posts
from ..store.posts import PostState
from ..store.schema import inbound
from ..store.schema import posts as posts_table
from . import decisions
from .approval import VERIFYING, ask_approval, warnings_of
from .dkim_verify import Addressed, DkimResult, Verification, verify
from .dnskeys import KeyLookup

log = logging.getLogger(__name__)

BATCH = 16
"""Posts verified at once: a slow domain in one costs the others nothing."""

METHOD = "authenticated:dkim"


def pending(engine: sa.Engine, limit: int = BATCH) -> list[tuple[int, str, str, bytes]]:
    """Held posts waiting for verification: (id, sender, channel, the raw mail as received)."""
    query = (
        sa.select(posts_table.c.id, posts_table.c.sender, posts_table.c.channel, inbound.c.raw)
        .select_from(posts_table.outerjoin(inbound, inbound.c.id == posts_table.c.spool_id))
        .where(posts_table.c.state == PostState.HELD, posts_table.c.note == VERIFYING)
        .order_by(posts_table.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query)
        return [(int(i), str(s), str(c), bytes(r or b"")) for i, s, c, r in rows]


def conclude(engine: sa.Engine, ctx: Context, post_id: int, verification: Verification) -> bool:
    """Record the verification and act on it, once; False if someone decided first."""
    with engine.begin() as conn:
        post = posts.get(conn, post_id)
        if post is None:
            return False
        findings = json.dumps([*post.findings, verification.finding()], ensure_ascii=False)
        served = post.channel in ctx.registry.channels
        done = conn.execute(
            posts_table.update()
            .where(
                posts_table.c.id == post_id,
                posts_table.c.state == PostState.HELD,
                posts_table.c.note == VERIFYING,
            )
            .values(findings=findings, note=verification.detail)
        )
        if done.rowcount != 1:
            return False  # approved, withdrawn or verified by someone else meanwhile
        if not served:
            return False  # the channel left the registry: the post waits to expire
        if verification.result is DkimResult.PASS:
            decisions.approve(conn, ctx, post_id, approver=post.sender, method=METHOD)
            return True
        note = (
            f"送信者の認証が確認できなかったため、確認をお願いしています（{verification.detail}）。"
        )
        ask_approval(conn, ctx, post, warnings=warnings_of(post), note=note)
        return True


async def _one(
    engine: sa.Engine,
    ctx: Context,
    keys: KeyLookup,
    post_id: int,
    sender: str,
    channel: str,
    raw: bytes,
) -> None:
    domain = ctx.service.mail_domain
    # a post is a mail to the channel's post address; d=<mail domain> is our own fan-out
    to = Addressed(post_address=ctx.address(channel, addresses.POST), own_domain=domain)
    if not raw:  # emptied by the retention purge
        verification = Verification(DkimResult.NONE, "受信したメールが残っていません")
    else:
        try:
            verification = await verify(raw, sender, keys, to)
        except Exception as exc:  # a bug must not leave the post pending for ever
            log.error("post#%d: DKIM verification failed: %s", post_id, type(exc).__name__)
            verification = Verification(DkimResult.NONE, "署名を検証できませんでした")
    log.info("post#%d: DKIM %s: %s", post_id, verification.result, verification.detail)
    await asyncio.to_thread(conclude, engine, ctx, post_id, verification)


async def run(
    engine: sa.Engine,
    ctx_of: Callable[[], Context],
    keys: KeyLookup,
    wake: Callable[[], None],
    poll: float = 0.5,
) -> None:
    """Forever: verify what waits, then look again after `poll` seconds."""
    while True:
        try:
            waiting = await asyncio.to_thread(pending, engine)
        except sa.exc.SQLAlchemyError:
            log.warning("DKIM verification: database error; retrying")
            waiting = []
        if waiting:
            ctx = ctx_of()
            results = await asyncio.gather(
                *(_one(engine, ctx, keys, *row) for row in waiting), return_exceptions=True
            )
            for failed in (r for r in results if isinstance(r, BaseException)):
                if isinstance(failed, asyncio.CancelledError):
                    raise failed
                log.warning("DKIM verification: %s; retrying", type(failed).__name__)
            wake()  # an approval queues a notice and lets the release task send the post
            if len(waiting) == BATCH:
                continue  # more may wait
        await asyncio.sleep(poll)
