"""Personal data kept no longer than needed (第4条(3)), consent records kept as the law asks.

After `limits.unsubscribed_retention_days` an unsubscribed (or disabled) address is replaced
by a keyed hash: the consent record (when and how the address consented, when it left) stays, as
特定電子メール法 asks senders to keep it, and can still be found by hashing an address with
the service's key when someone asks; the address itself is gone. A subscription never
confirmed is removed whole once its request has long expired. Raw mail in the spool
and the daemon's sent replies carry addresses too: they are emptied after
`limits.spool_retention_days`, except posts still held for approval.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from ..registry.model import Limits
from . import autoreplies, mypage
from .schema import confirmations, inbound, outbound, outbound_messages, subscribers
from .states import MessageKind, QueueState, SpoolState
from .subscribers import Status

PURGED = "purged:"


def pseudonym(key: bytes, address: str) -> str:
    """What stands for a purged address: stable for the same address, useless without the key."""
    digest = hmac.new(key, b"purge\0" + address.lower().encode(), hashlib.sha256).hexdigest()
    return PURGED + digest


@dataclass(frozen=True)
class Purged:
    subscribers: int
    confirmations: int
    inbound: int
    outbound: int
    pending: int = 0
    """Never-confirmed subscriptions, removed whole."""


def purge(engine: sa.Engine, key: bytes, limits: Limits, now: dt.datetime | None = None) -> Purged:
    now = now or utcnow()
    unsub_cutoff = now - dt.timedelta(days=limits.unsubscribed_retention_days)
    mail_cutoff = now - dt.timedelta(days=limits.spool_retention_days)
    with engine.begin() as conn:
        # never confirmed: no consent to keep, and the address may be a stranger's that
        # somebody else typed in
        stale = now - dt.timedelta(hours=limits.token_ttl_hours) - dt.timedelta(days=1)
        n_pending = conn.execute(
            subscribers.delete().where(
                subscribers.c.status == Status.PENDING, subscribers.c.created_at < stale
            )
        ).rowcount
        autoreplies.forget_before(conn, now - dt.timedelta(days=2))
        n_sub = 0
        rows = conn.execute(
            sa.select(
                subscribers.c.id, subscribers.c.address, subscribers.c.consent_evidence
            ).where(
                sa.or_(
                    sa.and_(
                        subscribers.c.status == Status.UNSUBSCRIBED,
                        subscribers.c.unsubscribed_at < unsub_cutoff,
                    ),
                    # disabled (bounced away, or removed by staff) and left so since
                    sa.and_(
                        subscribers.c.status == Status.DISABLED,
                        subscribers.c.updated_at < unsub_cutoff,
                    ),
                ),
                ~subscribers.c.address.startswith(PURGED),
            )
        ).all()
        for sub_id, address, evidence in rows:
            alias = pseudonym(key, address)
            conn.execute(
                subscribers.update()
                .where(subscribers.c.id == sub_id)
                .values(
                    address=alias,
                    address_key=alias,
                    consent_evidence=(evidence or "").replace(address, alias) or None,
                )
            )
            n_sub += 1
        pending = conn.execute(
            sa.select(confirmations.c.id, confirmations.c.address).where(
                confirmations.c.expires_at < mail_cutoff,
                ~confirmations.c.address.startswith(PURGED),
            )
        ).all()
        for conf_id, address in pending:
            alias = pseudonym(key, address)
            conn.execute(
                confirmations.update()
                .where(confirmations.c.id == conf_id)
                .values(address=alias, address_key=alias)
            )
        n_conf = len(pending)
        # the citizen's own page: expired links, changes of address never confirmed
        n_conf += mypage.forget_before(conn, mail_cutoff, lambda a: pseudonym(key, a), PURGED)
        n_in = conn.execute(
            inbound.update()
            .where(
                inbound.c.state.in_((SpoolState.DONE, SpoolState.FAILED)),
                inbound.c.received_at < mail_cutoff,
                inbound.c.mail_from != PURGED,
            )
            .values(raw=b"", mail_from=PURGED, rcpts="[]")
        ).rowcount
        finished = (QueueState.SENT, QueueState.BOUNCED, QueueState.FAILED)
        sent = conn.execute(
            sa.select(outbound.c.id, outbound.c.rcpt).where(
                outbound.c.state.in_(finished),
                outbound.c.created_at < mail_cutoff,
                ~outbound.c.rcpt.startswith(PURGED),
            )
        ).all()
        for row_id, rcpt in sent:
            conn.execute(
                outbound.update()
                .where(outbound.c.id == row_id)
                .values(rcpt=pseudonym(key, rcpt), headers=None)
            )
        # a rendered reply is emptied once none of its recipients is still to be sent; a
        # post's rendered part holds no address (To and tokens are per-recipient headers,
        # emptied above) and a paused fan-out may still need it
        still_open = sa.select(outbound.c.message_id).where(outbound.c.state.not_in(finished))
        conn.execute(
            outbound_messages.update()
            .where(
                outbound_messages.c.created_at < mail_cutoff,
                outbound_messages.c.kind != MessageKind.POST,
                outbound_messages.c.id.not_in(still_open),
            )
            .values(raw=b"")
        )
        return Purged(n_sub, n_conf, n_in, len(sent), n_pending)
