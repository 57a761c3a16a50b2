"""What a monthly report holds: per channel the month's figures and its 12-month trend,
and for the 統括管理者 the quiet channels (第5条4) and the month's outages (第9条).

Only counts, titles and dates: never a subscriber's address (第4条).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ...clock import JST, utcnow
from ...registry import Registry
from ...registry.state import channel_states
from ...store import monthly
from ...store.engine import reading
from ...store.monthly import Figures, Month
from .. import outage_status
from ..dormancy import Quiet, quiet_channels

TREND_MONTHS = 12


@dataclass(frozen=True, slots=True)
class OutageLine:
    """One stop of the month for the 統括管理者's report (第9条)."""

    title: str
    window: str  # e.g. 2026-11-03 01:00〜03:00
    notice: str  # when the advance notice (or the report of an emergency stop) went out


OutageSource = Callable[[sa.Engine, Registry, Month], list[OutageLine]]


def stored_outages(engine: sa.Engine, registry: Registry, month: Month) -> list[OutageLine]:
    """The month's stops with their notice or report as the daemon recorded them
    (operations/announce.py): the store, not the registry, knows whether it went out."""
    now = utcnow()
    return [
        OutageLine(
            title=f"{r.outage_id}（{r.reason}）",
            window=f"{_jst(r.start)}〜{_jst(r.end)}",
            notice=outage_status.state_text(r, now),
        )
        for r in outage_status.outages_in_period(engine, month.first, month.next().first)
    ]


def _jst(t: dt.datetime | None) -> str:
    return "未定" if t is None else f"{t.astimezone(JST):%Y-%m-%d %H:%M}"


@dataclass(frozen=True, slots=True)
class ChannelReport:
    slug: str
    title: str
    department: str
    figures: Figures
    trend: list[tuple[Month, Figures]]  # oldest first, ending with the report's month
    last_post: dt.date | None


@dataclass(frozen=True, slots=True)
class Report:
    service: str
    month: Month
    scope: str | None  # a department's id, or None: every channel (the 統括管理者)
    scope_name: str
    channels: list[ChannelReport]
    quiet: list[Quiet]  # only in the 統括管理者's report
    outages: list[OutageLine]  # likewise


def collect(
    engine: sa.Engine,
    registry: Registry,
    month: Month,
    department: str | None = None,
    *,
    today: dt.date,
    outages: OutageSource = stored_outages,
) -> Report:
    """The report of `month` for one department's channels, or for all. The channels are
    those the daemon served at the month's end (第7条)."""
    assert registry.service is not None
    on = min(month.last, today)
    served = {s for s, st in channel_states(registry, on).items() if st.served}
    slugs = sorted(
        s
        for s in served
        if department is None or registry.channels[s].value.department == department
    )
    months = month.trail(TREND_MONTHS)
    with reading(engine) as conn:
        per_month = [(m, monthly.figures(conn, slugs, m)) for m in months]
        last = monthly.last_posts(conn, slugs)
        quiet = quiet_channels(conn, registry, today) if department is None else []
    channels = []
    for slug in slugs:
        channel = registry.channels[slug].value
        dep = registry.departments.get(channel.department)
        at = last.get(slug)
        channels.append(
            ChannelReport(
                slug=slug,
                title=channel.title,
                department=dep.name if dep else channel.department,
                figures=per_month[-1][1][slug],
                trend=[(m, figs[slug]) for m, figs in per_month],
                last_post=at.astimezone(JST).date() if at is not None else None,
            )
        )
    if department is None:
        scope_name = "全チャネル（統括管理者）"
    else:
        dep = registry.departments.get(department)
        scope_name = dep.name if dep else department
    return Report(
        service=registry.service.value.name,
        month=month,
        scope=department,
        scope_name=scope_name,
        channels=channels,
        quiet=quiet,
        outages=outages(engine, registry, month) if department is None else [],
    )
