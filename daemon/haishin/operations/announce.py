"""The daemon gives the 第9条 notices itself: once a stop is in the served registry, the
advance notice of a planned stop goes to the other party `outage_notice_days` before its
start (第9条2・4: 事前に; how far ahead is agreed in service.yaml, 第10条), and the report
of an emergency stop as soon as it has begun (ただし書: 停止後速やかに).

Each pass mirrors the registry's stops into the store (store/outage_notices.py), then
claims and queues what is due, one transaction per notice: the claim and the queued mail
commit together or not at all. A notice is never queued before it is due, never twice
(restarts, several daemons on one PostgreSQL database), and a send that failed for good is
queued again (`requeue_failed`). The outbound queue retries 4xx as for any mail, and lets
the notice through an outage in force (outages.py OUTAGE_MAIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from ..mailtext.compose import compose
from ..registry.load import Registry
from ..registry.model import Outage, Service
from ..store import outage_notices as stored
from ..store import queue
from ..store.states import MessageKind
from .outages import OTHER, Announcement, text

log = logging.getLogger(__name__)

CHECK_EVERY = 60.0  # seconds: a notice goes out within a minute of being due


@dataclass(frozen=True, slots=True)
class Announced:
    outage_id: str
    kind: Announcement
    message_id: int


def _owed(service: Service, outage: Outage) -> stored.Owed | None:
    other = OTHER.get(outage.stopped_by)
    if other is None:  # `haishin check` refuses it (第9条1・3)
        return None
    if outage.kind == "planned":
        kind, given = Announcement.NOTICE, outage.notice
        due = outage.start - dt.timedelta(days=service.outage_notice_days)
    else:
        kind, given = Announcement.REPORT, outage.report
        due = outage.start
    return stored.Owed(
        outage_id=outage.id,
        kind=kind.value,
        stopped_by=outage.stopped_by.value,
        to_role=other.value,
        reason=outage.reason,
        start=outage.start,
        end=outage.end,
        due_at=due,
        recorded_at=None if given is None else given.at,
    )


def owed(reg: Registry) -> list[stored.Owed]:
    """What the registry's stops owe the other party (one row each)."""
    if reg.service is None:
        return []
    service = reg.service.value
    rows = (_owed(service, located.value) for located in reg.outages.values())
    return [r for r in rows if r is not None]


def _queue_one(
    conn: sa.Connection, reg: Registry, outage_id: str, kind: Announcement, now: dt.datetime
) -> int | None:
    """Claim and queue one notice inside `conn`'s transaction; None if not ours to send."""
    located = reg.outages.get(outage_id)
    if located is None or reg.service is None:
        return None  # mirrored by another daemon's newer or older registry: its pass
    if not stored.claim(conn, outage_id, kind.value, now):
        return None
    service, outage = reg.service.value, located.value
    subject, body = text(service, outage, kind)
    to = service.roles[OTHER[outage.stopped_by]].address
    raw = compose(
        from_name=service.name,
        from_addr=service.inquiry_address,
        to=to,
        subject=subject,
        body=body,
        domain=service.mail_domain,
        reply_to=service.roles[outage.stopped_by].address,
        auto="auto-generated",  # RFC 3834 §5: not a reply to anything
    )
    message_id = queue.enqueue(conn, raw, service.inquiry_address, [to], kind=MessageKind.NOTICE)
    stored.set_message(conn, outage_id, kind.value, message_id)
    return message_id


def announce_due(
    engine: sa.Engine, reg: Registry, now: dt.datetime | None = None
) -> list[Announced]:
    """One pass: mirror the registry's stops, then queue each notice that is due."""
    now = now or utcnow()
    with engine.begin() as conn:
        stored.mirror(conn, owed(reg), now)
        stored.requeue_failed(conn)
    with engine.connect() as conn:
        due = stored.due(conn, now)
    done = []
    for outage_id, kind in due:
        with engine.begin() as conn:
            message_id = _queue_one(conn, reg, outage_id, Announcement(kind), now)
        if message_id is not None:
            log.info("outage %s: %s queued (第9条)", outage_id, kind)
            done.append(Announced(outage_id, Announcement(kind), message_id))
    return done


async def run(
    engine: sa.Engine,
    registry_of: Callable[[], Registry],
    wake_sender: Callable[[], None],
    every: float = CHECK_EVERY,
) -> None:
    """The daemon's task; a database error is logged and tried again at the next pass (the
    claim rolled back with it, so nothing is lost), never the end of the daemon."""
    while True:
        try:
            sent = await asyncio.to_thread(announce_due, engine, registry_of())
        except sa.exc.SQLAlchemyError:
            log.exception("outage notices: database error; trying again later")
            sent = []
        if sent:
            wake_sender()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await asyncio.Event().wait()  # nothing sets it: a cancellable wait
