"""A bounce, from wherever it came, becomes what its class says (issue 12, item 2).

Two ways in, one way on (`_apply`):

- `from_mail`: a message to `<slug>-bounces[+<token>]@` (router/dispatch.py). The token is
  HMAC-checked and names the outbound row (VERP), which names the recipient; the report
  must then name that recipient too, or the bounce is about someone else (a forwarding
  address, a misdirected report) and is recorded as unmatched.
- `from_smtp`: 4xx/5xx replies while we were sending (outbound/sender.py, through a hook
  that service.py wires in, since the sender stands below this module), judged by the
  same classifier (`classify_reply`).

What each class does, as a table (`ACTIONS`); the rules' numbers are service.yaml's
`bounces:` block. No event holds an address in clear, and the log names an address only
by the keyring's `redact` (第4条).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from .. import addresses as contract
from ..clock import utcnow
from ..redact import mask_addresses
from ..registry.model import JST
from ..store import bounces as stored
from ..store import subscribers
from ..store.bounces import BounceOutcome, Source
from ..store.queue import Claimed
from ..store.schema import outbound
from ..store.states import QueueState
from ..store.subscribers import Status
from ..tokens import Keyring, Purpose, Verdict
from . import alarm as bounce_alarm
from .classify import BounceClass, Classified, Judged, classify, classify_reply
from .classify.verp import domain_of
from .score import DEFAULTS, BounceScore, BounceSettings, apply

log = logging.getLogger(__name__)

Redact = Callable[[str], str]

FILTERED = "filtered"
"""The carrier rule's reason: the subscriber's own 受信拒否設定 refuses our domain."""
DISABLED_BY_FILTER = "bounce-filtered"  # subscribers.unsubscribe_method: 受信拒否設定
DISABLED_BY_SCORE = "bounce"
WITHDRAWN_BY_COMPLAINT = "complaint"  # the consent record: withdrawn by an ARF complaint


class Action(enum.StrEnum):
    SCORE = "score"  # by the class's weight
    REFUSAL = "refusal"  # recorded; alarms or the carrier rule may act
    END = "end"  # ends the subscription at once
    IGNORE = "ignore"


ACTIONS: dict[BounceClass, Action] = {
    BounceClass.PERMANENT: Action.SCORE,  # full weight
    BounceClass.TEMPORARY: Action.SCORE,  # light weight
    BounceClass.REFUSED: Action.REFUSAL,  # says little about the address
    BounceClass.COMPLAINT: Action.END,  # RFC 5965: the recipient said "spam"
    BounceClass.NONE: Action.IGNORE,  # a success DSN, an auto-reply
}


class Recorded(enum.StrEnum):
    IGNORED = "ignored"  # an auto-reply or a report of success: not a bounce
    SCORED = "scored"
    DISABLED = "disabled"
    REFUSED = "refused"
    UNSUBSCRIBED = "unsubscribed"
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


def _ours(result: Classified, rcpt: str) -> Judged | None:
    key = subscribers.address_key(rcpt)
    return next((r for r in result.recipients if subscribers.address_key(r.address) == key), None)


def _unread(rcpt: str) -> Judged:
    """A report at a valid VERP address naming nobody we can read: likely a failure of
    the address the token names, weighed as `unknown_weight` (not a sure bounce)."""
    return Judged(rcpt, BounceClass.TEMPORARY, "undefined", None, None, "no recipient read")


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
    judged: Judged,
    outcome: BounceOutcome,
    sub_id: int | None = None,
    score: float | None = None,
) -> stored.Event:
    return stored.Event(
        day=day,
        channel=where.slug,
        subscriber_id=sub_id,
        source=where.source,
        kind=judged.klass.value,
        outcome=outcome,
        status=judged.status,
        diagnostic=mask_addresses(judged.evidence) or None,
        score=score,
        inbound_id=where.inbound_id,
        outbound_id=where.outbound_id,
        reason=judged.reason,
        domain=domain_of(judged.address) or None,
    )


def _apply(
    conn: sa.Connection,
    where: _Where,
    rcpt: str,
    judged: Judged,
    day: dt.date,
    settings: BounceSettings,
    redact: Redact,
    now: dt.datetime,
) -> Recorded:
    """What `judged` (about `rcpt`) does to the subscription of (`where.slug`, `rcpt`)."""
    action = ACTIONS[judged.klass]
    if action is Action.IGNORE:
        return Recorded.IGNORED
    sub = subscribers.find(conn, where.slug, rcpt) if where.slug else None
    if sub is None:
        stored.add_event(conn, _event(where, day, judged, BounceOutcome.UNMATCHED))
        _alarm(conn, action, judged, now, settings)
        log.info("bounce %s: unmatched (%s %s)", _origin(where), judged.klass, judged.reason)
        return Recorded.UNMATCHED
    if stored.lock_subscriber(conn, sub.id) != Status.ACTIVE:
        stored.add_event(conn, _event(where, day, judged, BounceOutcome.INACTIVE, sub.id))
        _alarm(conn, action, judged, now, settings)
        return Recorded.INACTIVE
    recorded, outcome, score = _act(conn, action, sub.id, judged, day, settings)
    stored.add_event(conn, _event(where, day, judged, outcome, sub.id, score))
    _alarm(conn, action, judged, now, settings)
    log.info(
        "bounce %s: %s %s %s/%s %s → %s",
        _origin(where),
        where.slug,
        redact(rcpt),
        judged.klass,
        judged.reason,
        judged.status or "-",
        recorded,
    )
    return recorded


def _alarm(
    conn: sa.Connection, action: Action, judged: Judged, now: dt.datetime, settings: BounceSettings
) -> None:
    # a refusal about us is about every subscriber at that domain, matched or not
    if action is Action.REFUSAL:
        bounce_alarm.maybe_alarm(conn, judged, now, settings)


def _act(
    conn: sa.Connection,
    action: Action,
    sub_id: int,
    judged: Judged,
    day: dt.date,
    settings: BounceSettings,
) -> tuple[Recorded, BounceOutcome, float | None]:
    if action is Action.END:
        # 特定電子メール法: the recipient refused our mail; the consent record says how
        subscribers.unsubscribe(conn, sub_id, method=WITHDRAWN_BY_COMPLAINT)
        stored.reset_score(conn, sub_id)
        return Recorded.UNSUBSCRIBED, BounceOutcome.UNSUBSCRIBED, None
    if action is Action.REFUSAL:
        if _filter_persists(conn, sub_id, judged, day, settings):
            subscribers.disable(conn, sub_id, method=DISABLED_BY_FILTER)
            return Recorded.DISABLED, BounceOutcome.DISABLED, None
        return Recorded.REFUSED, BounceOutcome.REFUSED, None
    weight = (
        settings.unknown_weight if judged.reason == "undefined" else settings.weight(judged.klass)
    )
    old = stored.load_score(conn, sub_id)
    new, disable = apply(
        BounceScore(old.score, old.last_bounce, old.day_weight), weight, day, settings
    )
    stored.save_score(conn, sub_id, stored.StoredScore(new.score, new.last_bounce, new.day_weight))
    if disable and subscribers.disable(conn, sub_id, method=DISABLED_BY_SCORE):
        return Recorded.DISABLED, BounceOutcome.DISABLED, new.score  # told in the weekly digest
    return Recorded.SCORED, BounceOutcome.SCORED, new.score


def _filter_persists(
    conn: sa.Connection, sub_id: int, judged: Judged, day: dt.date, settings: BounceSettings
) -> bool:
    """A carrier's `filtered`, with this one at least `filtered_times` refusals whose first
    and last are `filtered_span_days` apart: the subscriber's 受信拒否設定 refuses us, not
    a passing fault. (The window looks back twice the span, so old refusals fall away.)"""
    if judged.reason != FILTERED or not settings.carrier(domain_of(judged.address)):
        return False
    since = day - dt.timedelta(days=2 * settings.filtered_span_days + 1)
    days = [*stored.refusal_days(conn, sub_id, FILTERED, since), day]
    return len(days) >= settings.filtered_times and (
        (max(days) - min(days)).days >= settings.filtered_span_days
    )


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
    result = classify(raw)
    failures = [j for j in result.recipients if j.klass is not BounceClass.NONE]
    if result.recipients and not failures:
        log.info("bounce inbound#%d: ignored (%s)", inbound_id, result.recipients[0].reason)
        return Recorded.IGNORED
    day = service_day(now)
    verp = _verp(conn, keyring, slug, token, now) if token else None
    if verp is None:
        where = _Where(slug, Source.PLAIN, inbound_id)
        first = failures[0] if failures else _unread("")
        stored.add_event(conn, _event(where, day, first, BounceOutcome.UNMATCHED))
        log.info("bounce inbound#%d: no valid VERP token (%s)", inbound_id, first.reason)
        return Recorded.UNMATCHED
    where = _Where(slug, Source.VERP, inbound_id, verp.outbound_id)
    mine = _ours(result, verp.rcpt)
    if mine is None and failures:  # about someone else: never applied to our subscriber
        stored.add_event(conn, _event(where, day, failures[0], BounceOutcome.UNMATCHED))
        log.info("bounce inbound#%d: names another recipient (unmatched)", inbound_id)
        return Recorded.UNMATCHED
    if mine is None and result.parser == "arf":
        # a feedback loop that redacts the recipient (RFC 6590): the token we signed names
        # whom the complained-of message was sent to
        mine = Judged(verp.rcpt, BounceClass.COMPLAINT, "feedback", None, None, "ARF, redacted")
    judged = mine or _unread(verp.rcpt)
    recorded = _apply(conn, where, verp.rcpt, judged, day, settings, keyring.redact, now)
    counted = recorded not in (Recorded.UNMATCHED, Recorded.IGNORED)
    if verp.outbound_id is not None and judged.klass is BounceClass.PERMANENT and counted:
        # the row said "sent" (the smarthost took it); the remote end refused it later
        conn.execute(
            outbound.update()
            .where(outbound.c.id == verp.outbound_id)
            .values(
                state=QueueState.BOUNCED,
                last_error=f"bounce inbound#{inbound_id}: {judged.status or '-'}",
            )
        )
    return recorded


def from_smtp(
    conn: sa.Connection,
    failures: Sequence[tuple[Claimed, str]],
    *,
    redact: Redact,
    now: dt.datetime | None = None,
    settings: BounceSettings = DEFAULTS,
) -> None:
    """Replies refusing a recipient while sending, each (claimed row, reply), in the
    settle transaction: the same classifier as the reports (issue 12, item 1)."""
    now = now or utcnow()
    day = service_day(now)
    for row, reply in failures:
        where = _Where(slug_of_return_path(row.mail_from), Source.SMTP, None, row.id)
        judged = classify_reply(row.rcpt, reply)
        _apply(conn, where, row.rcpt, judged, day, settings, redact, now)
