"""The stops of the service and their 第9条 notices and reports, as staff read them:
`haishin status`, `haishin outage list`, and the 統括管理者's monthly report
(`outages_in_period`). Read from the store alone, which the daemon keeps in line with the
served registry (announce.py): no registry folder needed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ..registry.model import JST, ROLE_NAMES, Role
from ..store import outage_notices as stored
from ..store.engine import reading
from ..store.outage_notices import NoticeRecord, NoticeState
from ..store.states import QueueState

KIND_NAMES = {"notice": "事前通知", "report": "停止報告"}
OUTAGE_NAMES = {"notice": "計画停止", "report": "緊急停止"}


def _jst(t: dt.datetime | None) -> str:
    return "未定" if t is None else f"{t.astimezone(JST):%Y-%m-%d %H:%M}"


def outages_in_period(engine: sa.Engine, since: dt.date, until: dt.date) -> list[NoticeRecord]:
    """The stops whose window, notice or report falls in the days [since, until) (JST),
    with their notice or report: for the 統括管理者's monthly report. `until` is the
    first day after the period (e.g. a month: its first day and the next month's)."""
    start = dt.datetime.combine(since, dt.time(), JST)
    end = dt.datetime.combine(until, dt.time(), JST)
    with reading(engine) as conn:
        return stored.records(conn, start, end)


def current(engine: sa.Engine, now: dt.datetime, days: int = 30) -> list[NoticeRecord]:
    """The stops to come, in force, or ended within `days`: what `haishin status` shows."""
    with reading(engine) as conn:
        return stored.records(conn, since=now - dt.timedelta(days=days))


def state_text(r: NoticeRecord, now: dt.datetime) -> str:
    """Where the notice or report stands, in Japanese."""
    what = KIND_NAMES.get(r.kind, r.kind)
    if r.state is NoticeState.RECORDED:
        return f"{what}は記録済み（{_jst(r.recorded_at)}、登録情報のファイル）"
    if r.state is NoticeState.PENDING:
        if r.kind == "notice" and r.start <= now:
            how = f"送れない（送信に {r.attempts} 回失敗）" if r.attempts else "送らない"
            return (
                f"{what}を{how}まま停止が始まりました。事前の通知はできません: "
                "kind: emergency にして停止後の報告をしてください（第9条ただし書）"
            )
        if r.due_at > now:
            return f"{what}は {_jst(r.due_at)} に配信サーバーが送ります（送信予定）"
        return f"{what}は送信予定の時刻を過ぎました。配信サーバーが次の巡回（1 分以内）で送ります"
    if r.delivery == QueueState.SENT:
        return f"{what}は {_jst(r.sent_at)} に送信済み（{_jst(r.queued_at)} に送信待ちに）"
    if r.delivery in (QueueState.FAILED, QueueState.BOUNCED):
        return (
            f"{what}の送信に失敗しました（{r.attempts} 回）。宛先を service.yaml で確かめ、"
            f"haishin outage notify {r.outage_id} で送り直してください"
        )
    if r.delivery is None:
        return (
            f"{what}は {_jst(r.queued_at)} に送信待ちにしました（送信記録は保存期間を過ぎて消去）"
        )
    return f"{what}は {_jst(r.queued_at)} から送信待ち（再送を含む）"


def line(r: NoticeRecord, now: dt.datetime) -> str:
    """One stop on one line: id, kind, window, who stops, who is told and how it stands."""
    by = ROLE_NAMES.get(Role(r.stopped_by), r.stopped_by)
    to = ROLE_NAMES.get(Role(r.to_role), r.to_role)
    return (
        f"{r.outage_id} {OUTAGE_NAMES.get(r.kind, r.kind)} {_jst(r.start)} 〜 {_jst(r.end)}"
        f"（{by}が停止、{to}へ）: {state_text(r, now)}"
    )


def describe(records: list[NoticeRecord], now: dt.datetime) -> list[str]:
    """The lines of `haishin status` about the stops (第9条)."""
    if not records:
        return ["停止（第9条）: なし"]
    return ["停止（第9条）:", *(f"  {line(r, now)}" for r in records)]
