"""Sender-side alarms (issue 12, item 3): refusals that speak about us, counted per
destination domain; past the threshold within the window, one mail to the role holder
(the クラウドサービス管理者, 第4条(1)) with the evidence lines. Nobody's score moves.

The count is the recorded events themselves (bounce_events.reason and .domain), so
several daemons sharing a database agree, and the claim row makes the mail go once.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from ..mailtext.bounce_alarm import AlarmFacts, AlarmLine, bounce_alarm
from ..mailtext.compose import compose
from ..store import bounces as stored
from ..store import queue
from ..store.engine import reading
from ..store.states import MessageKind
from .classify import Judged
from .classify.verp import domain_of
from .score import BounceSettings

log = logging.getLogger(__name__)


def refusal_counts(engine: sa.Engine, reasons: tuple[str, ...]) -> dict[tuple[str, str], int]:
    """(reason, domain) → refusals about our sending: the Prometheus counter's values."""
    with reading(engine) as conn:
        return stored.refusal_counts(conn, reasons)


def maybe_alarm(
    conn: sa.Connection, judged: Judged, now: dt.datetime, settings: BounceSettings
) -> bool:
    """After a refusal was recorded: alarm if its domain has passed the threshold."""
    to = settings.alarm_to
    domain = domain_of(judged.address)
    if to is None or not domain or judged.reason not in settings.alarm_reasons:
        return False
    since = now - settings.alarm_window
    seen = stored.refusals(conn, domain, settings.alarm_reasons, since)
    if len(seen) < settings.alarm_threshold:
        return False
    if not stored.claim_alarm(conn, domain, since, len(seen)):
        return False  # this window's alarm went out already
    subject, body = bounce_alarm(
        AlarmFacts(
            service=to.service,
            role=to.role,
            name=to.name,
            domain=domain,
            window_minutes=int(settings.alarm_window.total_seconds() // 60),
            threshold=settings.alarm_threshold,
            lines=[AlarmLine(r.at, r.reason, r.status, r.diagnostic or "") for r in seen],
        )
    )
    raw = compose(
        from_name=to.service,
        from_addr=to.from_addr,
        to=to.address,
        subject=subject,
        body=body,
        domain=to.mail_domain,
        auto="auto-generated",  # RFC 3834 §5
    )
    message_id = queue.enqueue(conn, raw, to.from_addr, [to.address], kind=MessageKind.NOTICE)
    stored.set_alarm_message(conn, domain, since, message_id)
    log.warning(
        "bounce alarm: %d refusals about our sending at %s; %s told", len(seen), domain, to.role
    )
    return True
