"""The weekly bounce digest (bounces/digest.py) on the real store and registry."""

from __future__ import annotations

import asyncio
import datetime as dt
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import sqlalchemy as sa

from haishin.bounces import digest as bounce_digest
from haishin.bounces.digest import digests, week_of
from haishin.bounces.record import from_mail
from haishin.registry import load_valid
from haishin.registry.model import JST
from haishin.store import open_store
from support.helpers import CONFIG, DOMAIN
from support.verp import KEYRING, post_to, subscribe

SAMPLES = Path(__file__).parents[1] / "data" / "bounces"
MONDAY = dt.date(2026, 11, 23)
MANAGERS = {
    "kosodate-news": "kosodate-kacho@city.kawasaki.example.jp",
    "gomi-recycle": "genryo-kacho@city.kawasaki.example.jp",
}


def _bounces(engine: sa.Engine, slug: str, address: str, days: list[dt.date]) -> None:
    """docomo's report for `address`, once on each of `days`."""
    raw = (SAMPLES / "docomo-550-unknown-user.eml").read_bytes()
    raw = raw.replace(b"k-nakamura.0815@docomo.ne.jp", address.encode())
    subscribe(engine, slug, address)
    for day in days:
        token = post_to(engine, slug, address)
        now = dt.datetime.combine(day, dt.time(10), JST)
        with engine.begin() as conn:
            from_mail(conn, KEYRING, slug=slug, token=token, raw=raw, inbound_id=1, now=now)


def _queued(engine: sa.Engine) -> list[tuple[str, str, EmailMessage]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.mail_from, o.rcpt, m.raw FROM outbound o"
                " JOIN outbound_messages m ON m.id = o.message_id WHERE m.kind = 'digest'"
                " ORDER BY o.id"
            )
        ).all()
    out = []
    for mail_from, rcpt, raw in rows:
        msg = BytesParser(policy=policy.default).parsebytes(bytes(raw))
        assert isinstance(msg, EmailMessage)
        out.append((str(mail_from), str(rcpt), msg))
    return out


def test_week_of_is_monday() -> None:
    assert week_of(MONDAY) == MONDAY
    assert week_of(MONDAY + dt.timedelta(days=6)) == MONDAY
    assert week_of(MONDAY - dt.timedelta(days=1)) == MONDAY - dt.timedelta(days=7)


def test_digest_per_channel_once_a_week(db_url: str) -> None:
    engine = open_store(db_url)
    registry = load_valid(CONFIG)
    last_week = [MONDAY - dt.timedelta(days=n) for n in (7, 6, 5, 4, 3)]  # Mon..Fri
    _bounces(engine, "kosodate-news", "gone@docomo.ne.jp", last_week)  # disabled on Friday
    _bounces(engine, "gomi-recycle", "flaky@example.jp", [MONDAY - dt.timedelta(days=2)])
    _bounces(engine, "gomi-recycle", "today@example.jp", [MONDAY])  # next week's digest
    _bounces(engine, "noriai-bus", "old@example.jp", [MONDAY - dt.timedelta(days=8)])  # too old

    # a dry run shows, queues nothing and records nothing
    shown = digests(engine, registry, MONDAY, send=False)
    assert [(d.channel, d.queued) for d in shown] == [
        ("gomi-recycle", False),
        ("kosodate-news", False),
    ]
    assert _queued(engine) == []

    sent = digests(engine, registry, MONDAY, send=True)
    assert [(d.channel, d.queued) for d in sent] == [
        ("gomi-recycle", True),
        ("kosodate-news", True),
    ]
    queued = _queued(engine)
    assert [(f, r) for f, r, _ in queued] == [
        (f"gomi-recycle-bounces@{DOMAIN}", MANAGERS["gomi-recycle"]),
        (f"kosodate-news-bounces@{DOMAIN}", MANAGERS["kosodate-news"]),
    ]
    kosodate = queued[1][2]
    body = kosodate.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "2026年11月16日から2026年11月22日まで" in body
    assert "恒久的なエラー（宛先不明など）: 5 件" in body
    assert "gone@docomo.ne.jp（2026年11月20日停止、最後のエラー 5.0.0）" in body
    gomi = queued[0][2].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "恒久的なエラー（宛先不明など）: 1 件" in gomi
    # still bouncing, as the scores stand on the Monday it goes out
    assert "配信を停止したアドレス（0 件）" in gomi and "まだ停止していないアドレス: 2 件" in gomi
    assert "today@" not in gomi and "flaky@" not in gomi  # only the disabled are named

    # the same week again (a restart, the CLI after the task): nothing more
    assert not any(d.queued for d in digests(engine, registry, MONDAY, send=True))
    assert not any(
        d.queued for d in digests(engine, registry, MONDAY + dt.timedelta(days=3), send=True)
    )
    assert len(_queued(engine)) == 2
    # the next week: only what happened since
    (nxt,) = digests(engine, registry, MONDAY + dt.timedelta(days=7), send=True)
    assert nxt.channel == "gomi-recycle" and nxt.queued and nxt.summary.counts["permanent"] == 1
    engine.dispose()


def test_the_daemon_task_sends_on_mondays_only(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    registry = load_valid(CONFIG)
    _bounces(engine, "gomi-recycle", "flaky@example.jp", [MONDAY - dt.timedelta(days=2)])

    async def main(today: dt.date) -> int:
        woken = asyncio.Event()
        checks = 0

        def clock() -> dt.date:
            nonlocal checks
            checks += 1
            if checks > 1:
                woken.set()  # a second check: the first one is done
            return today

        task = asyncio.create_task(
            bounce_digest.run(engine, lambda: registry, woken.set, every=0.01, today_of=clock)
        )
        await woken.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return len(_queued(engine))

    assert asyncio.run(main(MONDAY - dt.timedelta(days=1))) == 0  # Sunday: nothing
    assert asyncio.run(main(MONDAY)) == 1  # Monday: the sender is woken for it
    assert asyncio.run(main(MONDAY)) == 1  # and once only
    engine.dispose()
