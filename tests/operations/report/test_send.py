"""The monthly report's mails (operations/report/send.py): on the first day of the month
(JST) each department's 情報管理者 and the 統括管理者 get one readable HTML mail with a
plain-text part and the CSV, through the real sender to a real SMTP smarthost; once per
month and recipient with two daemons on one database, and a failed send is retried."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from collections import Counter
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import sqlalchemy as sa

from haishin.operations.report import send as monthly_report
from haishin.operations.report.collect import OutageLine
from haishin.outbound import sender
from haishin.outbound.sender import SendSettings
from haishin.registry import load_valid
from haishin.store import open_store, report_mails
from haishin.store.monthly import Month
from haishin.store.schema import report_mails as report_mails_table
from support.helpers import CONFIG
from support.smarthost import Received, sink

from . import known

DECEMBER_1 = dt.date(2026, 12, 1)
GENERAL = "promo-kanri@city.kawasaki.example.jp"  # the sample's 統括管理者
GOMI_MANAGER = "genryo-kacho@city.kawasaki.example.jp"


def _reports(messages: list[Received]) -> list[Received]:
    return [m for m in messages if "配信報告" in str(m.msg["Subject"])]


def _parts(msg: EmailMessage) -> tuple[str, str, bytes, str]:
    """(text, html, csv bytes, csv file name)."""
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    data = attachment.get_payload(decode=True)
    assert isinstance(data, bytes)
    return plain.get_content(), html.get_content(), data, str(attachment.get_filename())


def test_once_per_recipient_with_two_daemons_and_a_retried_send(
    db_url: str, tmp_path: Path
) -> None:
    setup = open_store(db_url)
    known.build(setup)
    setup.dispose()
    registry = load_valid(CONFIG)
    expected = Counter(r.to for r in monthly_report.recipients(registry, dt.date(2026, 11, 30)))
    assert expected[GENERAL] == 1 and expected[GOMI_MANAGER] == 1
    # a department whose only channel was stopped (keizai-sangyo) or not yet approved
    # (machi-kotsu) has nothing to report; a paused one (shimin-sports) has
    keys = {r.key for r in monthly_report.recipients(registry, dt.date(2026, 11, 30))}
    assert not keys & {"keizai-sangyo", "machi-kotsu"} and "shimin-sports" in keys
    engines = [open_store(db_url), open_store(db_url)]  # two daemons, one database

    with sink() as smarthost:
        smarthost.answers[GENERAL] = "451 4.3.0 try again later"

        async def main() -> None:
            wake = asyncio.Event()
            settings = SendSettings(("127.0.0.1", smarthost.port), tmp_path, retry_base=0.05)
            tasks = [
                asyncio.create_task(
                    monthly_report.run(
                        e, lambda: registry, wake.set, every=0.05, today_of=lambda: DECEMBER_1
                    )
                )
                for e in engines
            ]
            tasks.append(asyncio.create_task(sender.run(engines[0], settings, wake, poll=0.05)))
            try:
                # everyone's but the 統括管理者's, whose smarthost said "later"
                await asyncio.to_thread(
                    lambda: _until(smarthost, lambda ms: len(_reports(ms)) == expected.total() - 1)
                )
                assert not smarthost.to(GENERAL)
                del smarthost.answers[GENERAL]
                await asyncio.to_thread(
                    lambda: _until(smarthost, lambda ms: len(_reports(ms)) == expected.total())
                )
                await asyncio.sleep(0.3)  # several more checks by both daemons: nothing new
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())
        reports = _reports(list(smarthost.messages))

    assert Counter(r for m in reports for r in m.rcpts) == expected
    with engines[0].connect() as conn:
        rows = conn.execute(sa.select(report_mails_table)).all()
        monthly = [r for r in rows if r.kind == report_mails.Kind.MONTHLY]
        assert {r.period for r in monthly} == {dt.date(2026, 11, 1)}
        assert len(monthly) == expected.total() and all(r.message_id for r in monthly)

    (general,) = [m for m in reports if GENERAL in m.rcpts]
    msg = general.msg
    assert msg["Auto-Submitted"] == "auto-generated"
    assert (
        str(msg["Subject"])
        == "【川崎市電子メール配信サービス】2026年11月の配信報告: 全チャネル（統括管理者）"
    )
    text, html, data, name = _parts(msg)
    assert name == "haishin-report-2026-11-all.csv"
    assert "月末の登録者数: 4" in text and "配信が途絶えているチャネル（第5条4）" in text
    assert "<svg" in html and "<script" not in html and "<img" not in html
    # no tracking: no remote resource, no link at all in the report
    assert not re.search(r"(?i)\b(src|href)=", html.replace('xmlns="http', ""))
    assert known.ADDRESS_DOMAIN not in text + html + data.decode("utf-8-sig")
    rows_csv = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    (gomi,) = [r for r in rows_csv if r["チャネル"] == known.GOMI]
    assert {k: gomi[k] for k in known.GOMI_NOVEMBER} == known.GOMI_NOVEMBER

    (department,) = [m for m in reports if GOMI_MANAGER in m.rcpts]
    text, html, data, name = _parts(department.msg)
    assert name == "haishin-report-2026-11-kankyo-genryo.csv"
    assert {r["チャネル"] for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))} == {
        "gomi-recycle",
        "recycle-market",
    }
    assert "配信が途絶えている" not in html  # the 統括管理者's section only
    for e in engines:
        e.dispose()


def _until(smarthost: object, done: object, timeout: float = 30.0) -> None:
    from support.smarthost import Sink

    assert isinstance(smarthost, Sink) and callable(done)
    with smarthost.cond:
        ok = smarthost.cond.wait_for(lambda: done(list(smarthost.messages)), timeout)
    assert ok, [str(m.msg["Subject"]) for m in smarthost.messages]


def test_a_report_that_fails_is_not_claimed_and_is_made_at_the_next_check(
    sqlite_url: str,
) -> None:
    engine = open_store(sqlite_url)
    registry = load_valid(CONFIG)

    def broken(*args: object) -> list[OutageLine]:
        raise RuntimeError("the outage listing failed")

    try:
        monthly_report.send_due(engine, registry, DECEMBER_1, outages=broken)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the failure was swallowed")
    month = Month(dt.date(2026, 11, 1))
    with engine.connect() as conn:
        assert (
            report_mails.sent(conn, report_mails.Kind.MONTHLY, report_mails.ALL, month.first)
            is None
        )
    lines = [OutageLine("定期保守", "2026-11-03 01:00〜03:00", "2026-10-27 防災CMS管理者へ通知")]
    sent = monthly_report.send_due(engine, registry, DECEMBER_1, outages=lambda *a: lines)
    assert sent == [report_mails.ALL]  # only what was missing
    assert monthly_report.send_due(engine, registry, DECEMBER_1) == []
    with engine.connect() as conn:
        raw = conn.execute(
            sa.text(
                "SELECT m.raw FROM outbound o JOIN outbound_messages m ON m.id = o.message_id"
                " WHERE o.rcpt = :r"
            ),
            {"r": GENERAL},
        ).scalar_one()
    msg = BytesParser(policy=policy.default).parsebytes(bytes(raw))
    assert isinstance(msg, EmailMessage)
    text, html, _, _ = _parts(msg)
    assert "定期保守 2026-11-03 01:00〜03:00" in text and '<th scope="row">定期保守</th>' in html
    engine.dispose()


def test_due_in_the_first_week_and_not_at_start(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    registry = load_valid(CONFIG)
    # past the catch-up days nothing is due: a store first started then sends no report
    # of a month it did not see
    assert monthly_report.send_due(engine, registry, dt.date(2026, 12, 8)) == []

    async def started(seconds: float) -> None:
        task = asyncio.create_task(
            monthly_report.run(engine, lambda: registry, lambda: None, today_of=lambda: DECEMBER_1)
        )
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(started(0.3))  # a daemon started for a moment sends nothing
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(report_mails_table)).scalar() == 0
        )
    late = monthly_report.send_due(engine, registry, dt.date(2026, 12, 7))
    assert report_mails.ALL in late  # the 7th still catches up
    engine.dispose()
