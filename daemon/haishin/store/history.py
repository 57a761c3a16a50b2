"""Each subscription's start and end, with the cause of the end (issue 15: the monthly
report counts them per month; `subscribers` keeps only the latest state).

Written by store/subscribers.py in the transaction that changes the state, so the history
and the state never disagree. Never an address: the subscriber is a reference (第4条).
"""

from __future__ import annotations

import enum

import sqlalchemy as sa

from ..clock import utcnow
from .schema import subscription_events


class Change(enum.StrEnum):
    JOINED = "joined"  # confirmed (double opt-in): a new registration
    LEFT = "left"  # no longer mailed: unsubscribed, disabled, removed


class Cause(enum.StrEnum):
    """Why a subscription ended, as the report shows it."""

    CITIZEN = "citizen"  # the subscriber left (mail, one-click, web button)
    BOUNCE = "bounce"  # disabled by bounces (score or carrier filter)
    COMPLAINT = "complaint"  # an ARF complaint withdrew the consent
    STAFF = "staff"  # removed by the 情報管理者's staff (第5条(2))


# the methods other modules write into `subscribers.unsubscribe_method`, and their cause;
# any other method is the subscriber's own (mail-reply, one-click, web-button, mail-token)
_CAUSE_OF_METHOD = {
    "complaint": Cause.COMPLAINT,  # bounces/record.py WITHDRAWN_BY_COMPLAINT
    "bounce": Cause.BOUNCE,  # bounces/record.py DISABLED_BY_SCORE
    "bounce-filtered": Cause.BOUNCE,  # bounces/record.py DISABLED_BY_FILTER
    "staff": Cause.STAFF,  # subscribers.remove
}


def cause_of(method: str) -> Cause:
    return _CAUSE_OF_METHOD.get(method, Cause.CITIZEN)


def joined(conn: sa.Connection, channel: str, sub_id: int) -> None:
    conn.execute(
        subscription_events.insert().values(
            at=utcnow(), channel=channel, subscriber_id=sub_id, change=Change.JOINED
        )
    )


def left(conn: sa.Connection, channel: str, sub_id: int, method: str) -> None:
    """Called after the update that ended an active subscription, only when it did (its
    row count was 1): two daemons ending the same one record it once."""
    conn.execute(
        subscription_events.insert().values(
            at=utcnow(),
            channel=channel,
            subscriber_id=sub_id,
            change=Change.LEFT,
            cause=cause_of(method),
        )
    )
