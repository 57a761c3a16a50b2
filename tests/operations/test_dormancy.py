"""Quiet channels (第5条4, operations/dormancy.py) on SQLite and PostgreSQL: one reminder
to the 情報管理者 per quiet span, two daemons or not; a new post starts a new span; the
統括管理者's report lists them; a paused channel is not reminded."""

from __future__ import annotations

import datetime as dt
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import sqlalchemy as sa

from haishin.operations import dormancy
from haishin.operations.report.collect import collect
from haishin.registry import load_valid
from haishin.store import open_store
from haishin.store.monthly import Month
from support.helpers import CONFIG

from .report import known
from .report.known import jst

GOMI_MANAGER = "genryo-kacho@city.kawasaki.example.jp"
DECEMBER_1 = dt.date(2026, 12, 1)


def _reminders(engine: sa.Engine) -> list[tuple[str, EmailMessage]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.rcpt, m.raw FROM outbound o JOIN outbound_messages m"
                " ON m.id = o.message_id JOIN report_mails r ON r.message_id = m.id"
                " WHERE r.kind = 'dormant' ORDER BY o.id"
            )
        ).all()
    out = []
    for rcpt, raw in rows:
        msg = BytesParser(policy=policy.default).parsebytes(bytes(raw))
        assert isinstance(msg, EmailMessage)
        out.append((str(rcpt), msg))
    return out


def _post(engine: sa.Engine, channel: str, at: dt.datetime) -> None:
    with engine.begin() as conn:
        known._post(conn, channel, at, [at])


def test_one_reminder_per_quiet_span(db_url: str) -> None:
    registry = load_valid(CONFIG)
    assert registry.service is not None and registry.service.value.dormant_after_days == 90
    engines = [open_store(db_url), open_store(db_url)]
    engine = engines[0]
    _post(engine, known.GOMI, jst(2026, 9, 1, 10))  # 91 days before 12/1
    _post(engine, known.KOSODATE, jst(2026, 11, 20, 10))

    with engine.connect() as conn:
        quiet = {q.slug: q for q in dormancy.quiet_channels(conn, registry, DECEMBER_1)}
    assert known.GOMI in quiet and known.KOSODATE not in quiet
    assert "sports-event" not in quiet  # paused by the 統括管理者 (第3条5)
    assert quiet[known.GOMI].days == 91 and quiet[known.GOMI].last_post == dt.date(2026, 9, 1)
    never = quiet["shogai-gakushu"]  # nothing sent since it was registered
    assert never.last_post is None and never.since == registry.channels[never.slug].value.registered

    # two daemons at once: each reminder once
    threads = [
        threading.Thread(
            target=dormancy.remind, args=(e, registry, DECEMBER_1), kwargs={"send": True}
        )
        for e in engines
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = _reminders(engine)
    assert sorted(rcpt for rcpt, _ in sent) == sorted(
        registry.departments[registry.channels[s].value.department].manager.address for s in quiet
    )
    (gomi,) = [m for _, m in sent if f"（{known.GOMI}）" in m.get_content()]
    body = gomi.get_content()
    assert "91 日間、配信がありません" in body and "最終配信日: 2026年09月01日" in body
    assert "第5条4" in body and gomi["Auto-Submitted"] == "auto-generated"
    assert dormancy.remind(engine, registry, DECEMBER_1 + dt.timedelta(days=5), send=True) == []

    # the 統括管理者's report lists them, with the day the reminder went out
    report = collect(engine, registry, Month(dt.date(2026, 11, 1)), today=DECEMBER_1)
    listed = {q.slug: q for q in report.quiet}
    assert listed.keys() == quiet.keys() and listed[known.GOMI].reminded is not None
    department = collect(
        engine, registry, Month(dt.date(2026, 11, 1)), "kankyo-genryo", today=DECEMBER_1
    )
    assert department.quiet == []  # a department's report has no such section

    # a post starts a new span: quiet again only 90 days after it
    _post(engine, known.GOMI, jst(2026, 12, 2, 9))
    early = dormancy.remind(engine, registry, dt.date(2027, 2, 28), send=True)
    assert [q.slug for q in early] == [known.KOSODATE]  # 100 days since 11/20; not gomi yet
    again = dormancy.remind(engine, registry, dt.date(2027, 3, 2), send=True)
    assert [q.slug for q in again] == [known.GOMI] and again[0].since == dt.date(2026, 12, 2)
    assert [rcpt for rcpt, m in _reminders(engine) if f"（{known.GOMI}）" in m.get_content()] == [
        GOMI_MANAGER,
        GOMI_MANAGER,
    ]
    for e in engines:
        e.dispose()
