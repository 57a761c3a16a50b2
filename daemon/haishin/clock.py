"""The service's notion of now, one place to read it (tests and a paused clock go through
here): aware UTC for the store, the queue and tokens; Japan's time for what people read and
for the registry's dates, which are Japanese dates (附則's 2021-12-24, 第9条's outage
windows, a pause's until-date)."""

from __future__ import annotations

import datetime as dt

JST = dt.timezone(dt.timedelta(hours=9), "JST")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def jstnow() -> dt.datetime:
    """Now in Japan: a mail's Date header, the rules' windows."""
    return utcnow().astimezone(JST)


def today() -> dt.date:
    """Today's date in Japan: the day the registry's dates are compared with."""
    return jstnow().date()


def epoch_seconds() -> int:
    """Now as whole seconds since the epoch: DKIM's t= and x= (RFC 6376 §3.5)."""
    return int(utcnow().timestamp())
