"""Japanese dates for the templates: 2026年12月13日（日） 1時00分."""

from __future__ import annotations

import datetime as dt

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


FILTERS = {"jpdate": jpdate, "jpdatetime": jpdatetime, "isodate": isodate}
