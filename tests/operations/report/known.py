"""A store with known events around November 2026 (JST), for the monthly report's tests.

Subscriptions change through the real store functions (store/subscribers.py, which write
the history); each change is then dated to a known instant, some on either side of a JST
month boundary (2026-10-31T15:00Z is 1 November 00:00 in Japan). Posts, deliveries and
bounce events are rows with known dates. The expected figures are written out by hand.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from haishin.clock import JST
from haishin.store import subscribers
from haishin.store.schema import (
    bounce_events,
    outbound,
    outbound_messages,
    posts,
    subscription_events,
)

UTC = dt.UTC
GOMI = "gomi-recycle"  # department kankyo-genryo
KOSODATE = "kosodate-news"  # department kodomo-kosodate
ADDRESS_DOMAIN = "subscriber.example.jp"


def jst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=JST)  # type: ignore[misc]


def _dated(conn: sa.Connection, when: dt.datetime) -> None:
    """Date the latest history row (the change just made) to `when`."""
    e = subscription_events.c
    latest = conn.execute(sa.select(sa.func.max(e.id))).scalar_one()
    conn.execute(subscription_events.update().where(e.id == latest).values(at=when))


def _join(conn: sa.Connection, channel: str, name: str, when: dt.datetime) -> int:
    sub = subscribers.activate(
        conn, channel, f"{name}@{ADDRESS_DOMAIN}", method="mail-reply", evidence="test"
    )
    _dated(conn, when)
    return sub.id


def _post(
    conn: sa.Connection, channel: str, sent_at: dt.datetime | None, done: list[dt.datetime]
) -> None:
    """A post that began to go out at `sent_at` (None: still held), delivered to one
    recipient at each of `done`, and bounced for one more."""
    message = conn.execute(
        outbound_messages.insert().values(
            created_at=sent_at or jst(2026, 11, 1), kind="post", raw=b"x"
        )
    ).inserted_primary_key
    assert message is not None
    created = sent_at or jst(2026, 11, 2)
    conn.execute(
        posts.insert().values(
            channel=channel,
            sender="staff@city.kawasaki.example.jp",
            subject="お知らせ",
            text="本文",
            state="sent" if sent_at else "held",
            approval="confirm",
            created_at=created,
            expires_at=created + dt.timedelta(days=3),
            sent_at=sent_at,
            outbound_message=message[0],
        )
    )
    rows = [("sent", at) for at in done] + ([("bounced", done[0])] if done else [])
    for i, (state, at) in enumerate(rows):
        conn.execute(
            outbound.insert().values(
                message_id=message[0],
                mail_from="",
                rcpt=f"r{i}@{ADDRESS_DOMAIN}",
                state=state,
                next_try=at,
                created_at=at,
                done_at=at,
            )
        )


def _bounce(conn: sa.Connection, channel: str, day: dt.date, kind: str) -> None:
    conn.execute(
        bounce_events.insert().values(
            at=dt.datetime.combine(day, dt.time(12), JST),
            day=day,
            channel=channel,
            source="verp",
            kind=kind,
            outcome="scored",
        )
    )


def build(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _join(conn, GOMI, "a1", jst(2026, 9, 10, 9))
        _join(conn, GOMI, "a2", dt.datetime(2026, 10, 31, 15, 0, tzinfo=UTC))  # 11/1 0:00 JST
        _join(conn, GOMI, "a3", dt.datetime(2026, 10, 31, 14, 59, 59, tzinfo=UTC))  # 10/31 JST
        a4 = _join(conn, GOMI, "a4", jst(2026, 11, 5, 12))
        assert subscribers.unsubscribe(conn, a4, method="one-click")
        _dated(conn, jst(2026, 11, 20, 8))
        a5 = _join(conn, GOMI, "a5", jst(2026, 10, 1, 12))
        assert subscribers.disable(conn, a5, method="bounce")
        _dated(conn, jst(2026, 11, 10, 8))
        a6 = _join(conn, GOMI, "a6", jst(2026, 10, 2, 12))
        assert subscribers.unsubscribe(conn, a6, method="complaint")
        _dated(conn, jst(2026, 11, 11, 8))
        _join(conn, GOMI, "a7", jst(2026, 10, 3, 12))
        assert subscribers.remove(conn, GOMI, f"A7@{ADDRESS_DOMAIN}")
        _dated(conn, dt.datetime(2026, 11, 30, 15, 0, tzinfo=UTC))  # 12/1 0:00 JST
        _join(conn, GOMI, "a8", jst(2026, 12, 2, 12))
        # a pending subscription (never confirmed) is no registration
        subscribers.ensure_pending(conn, GOMI, f"p1@{ADDRESS_DOMAIN}")

        _join(conn, KOSODATE, "k1", jst(2026, 11, 15, 12))

        _post(conn, GOMI, jst(2026, 10, 20, 10), [jst(2026, 10, 20, 10, 5)])
        _post(
            conn,
            GOMI,
            jst(2026, 11, 3, 10),
            [jst(2026, 11, 3, 10, 1), jst(2026, 11, 3, 10, 2), jst(2026, 11, 3, 10, 3)],
        )
        # begun 11/1 0:30 JST; its second delivery after the month's end (12/1 1:00 JST)
        _post(
            conn,
            GOMI,
            dt.datetime(2026, 10, 31, 15, 30, tzinfo=UTC),
            [jst(2026, 11, 1, 0, 31), dt.datetime(2026, 11, 30, 16, 0, tzinfo=UTC)],
        )
        _post(conn, GOMI, None, [])  # held: not sent
        _post(conn, KOSODATE, jst(2026, 6, 1, 10), [jst(2026, 6, 1, 10, 1)])

        _bounce(conn, GOMI, dt.date(2026, 11, 1), "permanent")
        _bounce(conn, GOMI, dt.date(2026, 11, 30), "temporary")
        _bounce(conn, GOMI, dt.date(2026, 12, 1), "permanent")
        _bounce(conn, GOMI, dt.date(2026, 10, 31), "permanent")
        _bounce(conn, GOMI, dt.date(2026, 11, 15), "refused")
        _bounce(conn, GOMI, dt.date(2026, 11, 15), "refused")
        _bounce(conn, GOMI, dt.date(2026, 11, 11), "complaint")


# gomi-recycle, November 2026, as the CSV shows it (the columns of operations/report/columns.py)
GOMI_NOVEMBER = {
    "新規登録": "2",  # a2 (11/1 0:00 JST), a4
    "解除（本人）": "1",  # a4
    "解除（配信エラー）": "1",  # a5
    "解除（迷惑メール報告）": "1",  # a6
    "解除（担当者）": "0",  # a7 left on 12/1 JST
    "月末の登録者数": "4",  # a1, a2, a3, a7
    "配信回数": "2",  # 11/3, and 11/1 0:30 JST
    "配信通数": "4",  # three on 11/3, one on 11/1 (the one on 12/1 is December's)
    "エラー（恒久的エラー）": "1",
    "エラー（一時的エラー）": "1",
    "エラー（受信側の拒否）": "2",
    "エラー（迷惑メール報告）": "1",
    "最終配信日": "2026-11-03",
}
GOMI_OCTOBER = {"新規登録": "4", "月末の登録者数": "5", "配信回数": "1", "配信通数": "1"}
