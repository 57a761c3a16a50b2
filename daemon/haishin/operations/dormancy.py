"""Channels that have gone quiet (第5条4: the 情報管理者 keeps distributing so that
subscribers keep their trust).

A channel whose latest post began to go out `dormant_after_days` (service.yaml) ago or
more, or that has sent nothing since it was registered that long ago, is quiet: its
情報管理者 gets one reminder per quiet span (recorded in `report_mails`, keyed by the day
the span began, so a new post starts a new span), and the 統括管理者's monthly report lists
it. Paused channels (第3条5) are not reminded: the hold is the 統括管理者's own.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import JST
from ..mailtext.compose import compose
from ..mailtext.dormancy import QuietFacts, dormancy_reminder
from ..registry import Registry
from ..registry.state import State, channel_states
from ..store import monthly, queue, report_mails
from ..store.engine import reading
from ..store.states import MessageKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Quiet:
    slug: str
    title: str
    department: str
    last_post: dt.date | None
    since: dt.date  # the span's first day: the last post's (JST) or the registration
    days: int
    reminded: dt.datetime | None  # when this span's reminder was queued


def quiet_channels(conn: sa.Connection, registry: Registry, today: dt.date) -> list[Quiet]:
    assert registry.service is not None
    threshold = registry.service.value.dormant_after_days
    states = channel_states(registry, today)
    active = [s for s, st in states.items() if st.state is State.ACTIVE]
    last = monthly.last_posts(conn, active)
    out: list[Quiet] = []
    for slug in sorted(active):
        channel = registry.channels[slug].value
        at = last.get(slug)
        last_day = at.astimezone(JST).date() if at is not None else None
        since = last_day or channel.registered
        days = (today - since).days
        if days < threshold:
            continue
        department = registry.departments.get(channel.department)
        reminded = report_mails.sent(conn, report_mails.Kind.DORMANT, slug, since)
        name = department.name if department else channel.department
        out.append(Quiet(slug, channel.title, name, last_day, since, days, reminded))
    return out


def remind(engine: sa.Engine, registry: Registry, today: dt.date, *, send: bool) -> list[Quiet]:
    """Queue the reminders due (once per span); the quiet channels not yet reminded."""
    assert registry.service is not None
    service = registry.service.value
    with reading(engine) as conn:
        due = [q for q in quiet_channels(conn, registry, today) if q.reminded is None]
    if not send:
        return due
    queued: list[Quiet] = []
    for q in due:
        channel = registry.channels[q.slug].value
        department = registry.departments.get(channel.department)
        if department is None:
            continue
        facts = QuietFacts(
            service=service.name,
            slug=q.slug,
            title=q.title,
            department=department.name,
            manager=f"{department.manager.title} {department.manager.name}",
            last_post=q.last_post,
            since=q.since,
            days=q.days,
            threshold=service.dormant_after_days,
            inquiry_address=service.inquiry_address,
        )
        subject, body = dormancy_reminder(facts)
        to = department.manager.address
        raw = compose(
            from_name=service.name,
            from_addr=service.inquiry_address,
            to=to,
            subject=subject,
            body=body,
            domain=service.mail_domain,
            auto="auto-generated",  # RFC 3834 §5
        )
        with engine.begin() as conn:
            if not report_mails.claim(conn, report_mails.Kind.DORMANT, q.slug, q.since):
                continue  # another daemon took it
            message_id = queue.enqueue(
                conn, raw, service.inquiry_address, [to], kind=MessageKind.NOTICE
            )
            report_mails.set_message(conn, report_mails.Kind.DORMANT, q.slug, q.since, message_id)
        log.info("dormancy reminder for %s (quiet since %s) queued", q.slug, q.since)
        queued.append(q)
    return queued
