"""Filters for the templates: Japanese dates (2026年12月13日（日） 1時00分), addresses that
wrap where a reader expects."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup, escape

from ..addresses import pieces
from ..registry.model import JST

WEEKDAYS = "月火水木金土日"


def jpdate(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(JST) if value.tzinfo else value
    return f"{value.year}年{value.month}月{value.day}日（{WEEKDAYS[value.weekday()]}）"


def jpdatetime(value: dt.datetime) -> str:
    local = value.astimezone(JST) if value.tzinfo else value
    return f"{jpdate(local)} {local.hour}時{local.minute:02d}分"


def isodate(value: dt.date | dt.datetime) -> str:
    """For `<time datetime=…>` and the sitemap."""
    return value.isoformat()


def jpwindow(start: dt.datetime, end: dt.datetime | None) -> str:
    """A stop's window; the end's date is left out when it is the same day."""
    if end is None:
        return f"{jpdatetime(start)}から復旧まで"
    s, e = start.astimezone(JST), end.astimezone(JST)
    tail = f"{e.hour}時{e.minute:02d}分" if s.date() == e.date() else jpdatetime(e)
    return f"{jpdatetime(start)}〜{tail}"


def wbr(address: str) -> Markup:
    """An address with <wbr> where it may wrap (addresses.pieces), each piece escaped."""
    return Markup("<wbr>").join(escape(p) for p in pieces(address))


FILTERS = {
    "wbr": wbr,
    "jpdate": jpdate,
    "jpdatetime": jpdatetime,
    "jpwindow": jpwindow,
    "isodate": isodate,
}
