"""A bounce, from wherever it came, becomes a score: the one place for that rule.

Two ways in, one way on (`_count`):

- `from_mail`: a message to `<slug>-bounces[+<token>]@` (router/dispatch.py). The token is
  HMAC-checked and names the outbound row (VERP), which names the recipient; an RFC 3464
  report must then name that recipient too, or the bounce is about someone else (a
  forwarding address, a misdirected report) and is recorded as unmatched.
- `from_smtp`: 5xx replies while we were sending (outbound/sender.py, through a hook that
  service.py wires in, since the sender stands below this module).

Auto-replies (RFC 3834) and success-only reports weigh nothing and leave no record. Every
other bounce leaves a `bounce_events` row, matched or not; none holds an address in clear,
and the log names an address only by the keyring's `redact` (第4条).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from .. import addresses as contract
from ..registry.model import JST
from ..store import bounces as stored
from ..store import subscribers
from ..store.bounces import Outcome, Source
from ..store.clock import utcnow
from ..store.queue import BOUNCED, Claimed
from ..store.schema import outbound
from ..store.subscribers import Status
from ..tokens import Keyring, Purpose, Verdict
from .bounce_score import DEFAULTS, BounceScore, BounceSettings, apply
from .bounces import BounceKind, BounceReport, FailedRecipient, classify, smtp_failure

log = logging.getLogger(__name__)

Redact = Callable[[str], str]


class Recorded(enum.StrEnum):
    IGNORED = "ignored"  # an auto-reply or a report of success: not a bounce
    SCORED = "scored"
    DISABLED = "disabled"
    INACTIVE = "inactive"  # the subscription was not active: nothing to count
    UNMATCHED = "unmatched"


def service_day(now: dt.datetime) -> dt.date:
    """The service's calendar day (JST): the score rises at most once per such day."""
    return now.astimezone(JST).date()


def slug_of_return_path(mail_from: str) -> str | None:
    """`<slug>` of our return path `<slug>-bounces[+<token>]@domain`, else None."""
    local = mail_from.rpartition("@")[0].partition("+")[0].lower()
    if not local.endswith(contract.BOUNCES):
        return None
    slug = local.removesuffix(contract.BOUNCES)
    return slug if contract.SLUG_RE.match(slug) else None


def _ours(report: BounceReport, rcpt: str) -> FailedRecipient | None:
    key = subscribers.address_key(rcpt)
    return next((r for r in report.recipients if subscribers.address_key(r.address) == key), None)


def _weighed_kind(report: BounceReport, mine: FailedRecipient | None) -> BounceKind:
    # a report cut short (UNKNOWN overall) weighs as unknown even where its recipient
    # block reads "failed": the block that would change the verdict may be the lost one
    if mine is None or report.kind is BounceKind.UNKNOWN:
        return report.kind
    return mine.kind


@dataclasses.dataclass(frozen=True, slots=True)
class _Where:
    """What a bounce was matched to, and where it came from, for its event row."""

    slug: str | None
    source: Source
    inbound_id: int | None = None
    outbound_id: int | None = None


def _event(
    where: _Where,
    day: dt.date,
    kind: BounceKind,
    outcome: Outcome,
    mine: FailedRecipient | None,
    report: BounceReport,
    sub_id: int | None = None,
    score: float | None = None,
) -> stored.Event:
    diagnostic = mine.diagnostic if mine else report.reason
    return stored.Event(
        day=day,
        channel=where.slug,
        subscriber_id=sub_id,
        source=where.source,
        kind=kind,
        outcome=outcome,
        status=mine.status if mine else None,
        diagnostic=diagnostic or None,
        score=score,
        inbound_id=where.inbound_id,
        outbound_id=where.outbound_id,
    )


def _count(
    conn: sa.Connection,
    where: _Where,
    rcpt: str,
    report: BounceReport,
    day: dt.date,
    settings: BounceSettings,
    redact: Redact,
) -> Recorded:
    """Match `report` to the subscription of (`where.slug`, `rcpt`) and score it."""
    mine = _ours(report, rcpt)
    kind = _weighed_kind(report, mine)
    sub = subscribers.find(conn, where.slug, rcpt) if where.slug else None
    if sub is None or (report.recipients and mine is None):
        stored.add_event(conn, _event(where, day, kind, Outcome.UNMATCHED, mine, report))
        log.info("bounce %s: unmatched (%s)", _origin(where), report.reason)
        return Recorded.UNMATCHED
    if stored.lock_subscriber(conn, sub.id) != Status.ACTIVE:
        stored.add_event(conn, _event(where, day, kind, Outcome.INACTIVE, mine, report, sub.id))
        return Recorded.INACTIVE
    old = stored.load_score(conn, sub.id)
    new, disable = apply(
        BounceScore(old.score, old.last_bounce, old.day_weight),
        dataclasses.replace(report, kind=kind),
        day,
        settings,
    )
    stored.save_score(conn, sub.id, stored.StoredScore(new.score, new.last_bounce, new.day_weight))
    outcome = Outcome.SCORED
    if disable and subscribers.disable(conn, sub.id, method="bounce"):
        outcome = Outcome.DISABLED  # told to the 情報管理者 in the weekly digest
    stored.add_event(conn, _event(where, day, kind, outcome, mine, report, sub.id, new.score))
    log.info(
        "bounce %s: %s %s %s score %.1f → %s",
        _origin(where),
        where.slug,
        redact(rcpt),
        kind,
        new.score,
        outcome,
    )
    return Recorded(outcome.value)


def _origin(where: _Where) -> str:
    if where.inbound_id is not None:
        return f"inbound#{where.inbound_id}"
    return f"outbound#{where.outbound_id}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Verp:
    """Whom a VERP token names: the recipient, and the outbound row when it names one."""

    rcpt: str
    outbound_id: int | None = None


def _verp(
    conn: sa.Connection, keyring: Keyring, slug: str, token: str, now: dt.datetime
) -> _Verp | None:
    """The recipient a token in `<slug>-bounces+<token>@` stands for, or None.

    A post's fan-out names the subscriber (Purpose.VERP, delivery/fanout.py: the row id
    is not known before the row is written); other mail may name its outbound row
    (Purpose.BOUNCE). Either must belong to `slug`. An expired token still proves that
    we made it: reports come back days after the send (an MTA gives up on a deferred
    message after 4-5 days, RFC 5321 §4.5.4.1).
    """
    opened = keyring.open(Purpose.VERP, token, now)
    if opened.verdict is not Verdict.INVALID:
        sub = subscribers.by_id(conn, opened.ident)
        return _Verp(sub.address) if sub is not None and sub.channel == slug else None
    opened = keyring.open(Purpose.BOUNCE, token, now)
    if opened.verdict is Verdict.INVALID:
        return None
    row = conn.execute(
        sa.select(outbound.c.id, outbound.c.mail_from, outbound.c.rcpt).where(
            outbound.c.id == opened.ident
        )
    ).first()
    if row is None or slug_of_return_path(row.mail_from) != slug:
        return None
    return _Verp(str(row.rcpt), int(row.id))


def from_mail(
    conn: sa.Connection,
    keyring: Keyring,
    *,
    slug: str,
    token: str | None,
    raw: bytes,
    inbound_id: int,
    now: dt.datetime,
    settings: BounceSettings = DEFAULTS,
) -> Recorded:
    """A message that arrived at `<slug>-bounces[+<token>]@`. Never raises on its content."""
    local = f"{slug}{contract.BOUNCES}" + (f"+{token}" if token else "")
    report = classify(raw, local)
    if report.ignore:
        log.info("bounce inbound#%d: ignored (%s)", inbound_id, report.reason)
        return Recorded.IGNORED
    day = service_day(now)
    verp = _verp(conn, keyring, slug, token, now) if token else None
    if verp is None:
        where = _Where(slug, Source.PLAIN, inbound_id)
        kind = report.kind
        stored.add_event(conn, _event(where, day, kind, Outcome.UNMATCHED, None, report))
        log.info("bounce inbound#%d: no valid VERP token (%s)", inbound_id, report.reason)
        return Recorded.UNMATCHED
    where = _Where(slug, Source.VERP, inbound_id, verp.outbound_id)
    result = _count(conn, where, verp.rcpt, report, day, settings, keyring.redact)
    mine = _ours(report, verp.rcpt)
    permanent = _weighed_kind(report, mine) is BounceKind.PERMANENT
    if verp.outbound_id is not None and result is not Recorded.UNMATCHED and permanent:
        # the row said "sent" (the smarthost took it); the remote end refused it later
        status = mine.status if mine else None
        conn.execute(
            outbound.update()
            .where(outbound.c.id == verp.outbound_id)
            .values(state=BOUNCED, last_error=f"bounce inbound#{inbound_id}: {status or '-'}")
        )
    return result


def from_smtp(
    conn: sa.Connection,
    failures: Sequence[tuple[Claimed, str]],
    *,
    redact: Redact,
    now: dt.datetime | None = None,
    settings: BounceSettings = DEFAULTS,
) -> None:
    """5xx replies while sending, each (claimed row, reply): in the settle transaction."""
    day = service_day(now or utcnow())
    for row, reply in failures:
        where = _Where(slug_of_return_path(row.mail_from), Source.SMTP, None, row.id)
        _count(conn, where, row.rcpt, smtp_failure(row.rcpt, reply), day, settings, redact)
