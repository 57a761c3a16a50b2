"""The weekly bounce digest: one mail per channel per week to its 情報管理者, never one
mail per bounce (issue 6, item 6).

On the digest weekday (Monday, JST) the daemon's task queues, for every channel with
bounces in the seven days before, one mail to the department's 情報管理者. A row in
`bounce_digests` per (channel, week) makes it idempotent: a second run, a restart or a
second daemon on the same PostgreSQL database sends nothing more. `haishin bounces digest
--send` does the same on demand, on any weekday.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from .. import addresses as contract
from ..clock import utcnow
from ..mailtext.bounce_digest import DigestFacts, DisabledLine, bounce_digest
from ..mailtext.compose import compose
from ..registry import Registry
from ..store import bounces as stored
from ..store import queue
from ..store.engine import reading
from ..store.states import MessageKind
from .record import service_day
from .score import BounceSettings, settings_of
from .summary import Summary, summarize

log = logging.getLogger(__name__)

WEEKDAY = 0  # Monday: the digest covers the week that just ended
PERIOD = dt.timedelta(days=7)
CHECK_EVERY = 3600.0  # seconds; the task is idle on other days


def week_of(day: dt.date) -> dt.date:
    """The Monday of `day`'s week: the key that makes the digest once a week."""
    return day - dt.timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class Digest:
    channel: str
    to: str  # the 情報管理者's address (personal data of staff: never logged)
    summary: Summary
    subject: str
    body: str
    queued: bool  # False: this week's digest had gone out already, or a dry run


def _mail(registry: Registry, summary: Summary, settings: BounceSettings) -> tuple[str, str, str]:
    """(to, subject, body) of the digest for `summary`'s channel."""
    service = registry.service
    assert service is not None
    channel = registry.channels[summary.channel].value
    department = registry.departments[channel.department]
    facts = DigestFacts(
        service=service.value.name,
        slug=summary.channel,
        title=channel.title,
        department=department.name,
        manager=f"{department.manager.title} {department.manager.name}",
        since=summary.since,
        last_day=summary.last_day,
        counts=summary.counts,
        disabled=[DisabledLine(d.address, d.day, d.status, d.reason) for d in summary.disabled],
        scoring=sum(s.status == "active" for s in summary.scoring),
        threshold=settings.threshold,
        stale_days=settings.stale_days,
        inquiry_address=service.value.inquiry_address,
    )
    subject, body = bounce_digest(facts)
    return department.manager.address, subject, body


def digests(
    engine: sa.Engine,
    registry: Registry,
    today: dt.date,
    *,
    send: bool,
    settings: BounceSettings | None = None,
) -> list[Digest]:
    """This week's digests for the seven days before `today`; queued when `send`.
    The scoring rules are service.yaml's unless `settings` is given."""
    assert registry.service is not None
    settings = settings or settings_of(registry.service.value)
    since, until = today - PERIOD, today
    week = week_of(today)
    with reading(engine) as conn:
        slugs = [
            s for s in stored.channels_with_events(conn, since, until) if s in registry.channels
        ]
    done: list[Digest] = []
    for slug in slugs:
        with engine.begin() as conn:
            summary = summarize(conn, slug, since, until, today, settings)
            if summary.empty:
                continue
            to, subject, body = _mail(registry, summary, settings)
            queued = send and stored.claim_digest(conn, slug, week)
            if queued:
                assert registry.service is not None
                domain = registry.service.value.mail_domain
                raw = compose(
                    from_name=registry.service.value.name,
                    from_addr=registry.service.value.inquiry_address,
                    to=to,
                    subject=subject,
                    body=body,
                    domain=domain,
                    auto="auto-generated",  # RFC 3834 §5: not a reply to anything
                )
                # the null-answer return path: a bounce of the digest is recorded, never
                # answered (RFC 3834 §3.3)
                return_path = contract.of(slug, contract.BOUNCES, domain)
                message_id = queue.enqueue(conn, raw, return_path, [to], kind=MessageKind.DIGEST)
                stored.set_digest_message(conn, slug, week, message_id)
                log.info("bounce digest for %s (week of %s) queued", slug, week)
        done.append(Digest(slug, to, summary, subject, body, queued))
    return done


async def run(
    engine: sa.Engine,
    registry_of: Callable[[], Registry],
    wake_sender: Callable[[], None],
    every: float = CHECK_EVERY,
    today_of: Callable[[], dt.date] = lambda: service_day(utcnow()),
) -> None:
    """The daemon's task: on the digest weekday, queue what is due; a database error is
    logged and tried again at the next check, never the end of the daemon."""
    while True:
        today = today_of()
        if today.weekday() == WEEKDAY:
            try:
                sent = await asyncio.to_thread(digests, engine, registry_of(), today, send=True)
            except sa.exc.SQLAlchemyError:
                log.exception("bounce digest: database error; trying again later")
                sent = []
            if any(d.queued for d in sent):
                wake_sender()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await asyncio.Event().wait()  # nothing sets it: a cancellable wait
