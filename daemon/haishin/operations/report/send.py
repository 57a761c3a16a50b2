"""The monthly report's mails, and the daemon's task that sends them with the dormancy
reminders (issue 15 items 6 and 7).

On the first day of each month (JST) — or the first check after it, should every daemon
have been down that day — the report of the month just ended goes to each department's
情報管理者 for its channels and to the 統括管理者 for all. Each mail is claimed by a row
in `report_mails` in the transaction that queues it (store/report_mails.py): once per month
and recipient, whatever the number of daemons or restarts. A failure before the commit
leaves no row and is tried again at the next check; after it, the queue retries the send.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ...clock import today as jst_today
from ...mailtext.report_mail import report_mail
from ...registry import Registry
from ...registry.model import Role
from ...registry.state import channel_states
from ...store import queue, report_mails
from ...store.engine import reading
from ...store.monthly import Month
from ...store.states import MessageKind
from .. import dormancy
from .collect import OutageSource, collect, stored_outages
from .render import csv_bytes, html, subject, text

log = logging.getLogger(__name__)

CHECK_EVERY = 3600.0  # seconds; also the wait before the first check after a start
CATCH_UP_DAYS = 7
"""The report is due from the month's first day (JST) through its seventh: daemons all
down on the 1st send it when back; a store first started late in a month sends none for
month it did not see."""


@dataclass(frozen=True, slots=True)
class Recipient:
    key: str  # report_mails.subject: a department's id, or report_mails.ALL
    department: str | None
    to: str  # a staff address (never a subscriber's)


def recipients(registry: Registry, on: dt.date | None = None) -> list[Recipient]:
    """Each department with a channel served on `on` (the month's last day; default:
    today), to its 情報管理者; all, to the 統括管理者."""
    assert registry.service is not None
    states = channel_states(registry, on)
    with_channels = {
        c.value.department for slug, c in registry.channels.items() if states[slug].served
    }
    out = [
        Recipient(dep_id, dep_id, dep.manager.address)
        for dep_id, dep in sorted(registry.departments.items())
        if dep_id in with_channels
    ]
    general = registry.service.value.roles.get(Role.GENERAL_MANAGER)
    if general is not None:
        out.append(Recipient(report_mails.ALL, None, general.address))
    return out


def build(
    engine: sa.Engine,
    registry: Registry,
    month: Month,
    department: str | None,
    to: str,
    *,
    today: dt.date,
    outages: OutageSource = stored_outages,
) -> bytes:
    assert registry.service is not None
    service = registry.service.value
    report = collect(engine, registry, month, department, today=today, outages=outages)
    scope = department or "all"
    return report_mail(
        from_name=service.name,
        from_addr=service.inquiry_address,
        to=to,
        subject=subject(report),
        text=text(report),
        html=html(report),
        csv_name=f"haishin-report-{month.label}-{scope}.csv",
        csv_bytes=csv_bytes(report),
        domain=service.mail_domain,
    )


def send_due(
    engine: sa.Engine,
    registry: Registry,
    today: dt.date,
    *,
    outages: OutageSource = stored_outages,
) -> list[str]:
    """Queue last month's reports not yet sent; the keys of those this call queued. Past
    the catch-up days nothing is due (`haishin report` shows any month on demand)."""
    assert registry.service is not None
    if today.day > CATCH_UP_DAYS:
        return []
    month = Month.of(today).previous()
    kind = report_mails.Kind.MONTHLY
    sent: list[str] = []
    for r in recipients(registry, month.last):
        with reading(engine) as conn:
            if report_mails.sent(conn, kind, r.key, month.first) is not None:
                continue
        # built outside the claiming transaction: it reads for a while, the claim is short
        raw = build(engine, registry, month, r.department, r.to, today=today, outages=outages)
        with engine.begin() as conn:
            if not report_mails.claim(conn, kind, r.key, month.first):
                continue  # another daemon queued it meanwhile
            message_id = queue.enqueue(
                conn, raw, registry.service.value.inquiry_address, [r.to], kind=MessageKind.NOTICE
            )
            report_mails.set_message(conn, kind, r.key, month.first, message_id)
        log.info("monthly report %s for %s queued", month.label, r.key)
        sent.append(r.key)
    return sent


def _check(engine: sa.Engine, registry: Registry, today: dt.date, outages: OutageSource) -> bool:
    reports = send_due(engine, registry, today, outages=outages)
    reminders = dormancy.remind(engine, registry, today, send=True)
    return bool(reports or reminders)


async def run(
    engine: sa.Engine,
    registry_of: Callable[[], Registry],
    wake_sender: Callable[[], None],
    every: float = CHECK_EVERY,
    today_of: Callable[[], dt.date] = jst_today,
    outages: OutageSource = stored_outages,
) -> None:
    """The daemon's task: reports and reminders due are queued at each check; a failure
    is logged and tried again at the next, never the end of the daemon. The first check
    comes `every` seconds after the start: a start is not the moment to send staff mail
    (a daemon started for a moment, or restarted in a loop, sends nothing)."""
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await asyncio.Event().wait()  # nothing sets it: a cancellable wait
        try:
            queued = await asyncio.to_thread(_check, engine, registry_of(), today_of(), outages)
        except Exception:
            # a database error, or a report that cannot be made: nothing was claimed, so it
            # is tried again at the next check; a bug here must not end the daemon through
            # its supervisor's restart cap (mail intake goes on, 第8条)
            log.exception("monthly report: failed; trying again at the next check")
            queued = False
        if queued:
            wake_sender()
