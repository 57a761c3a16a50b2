"""Issue 14: what a change of address takes along (commands/moves.py), on a real store."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from haishin.commands import moves, mypage
from haishin.store import mypage as store
from haishin.store import subscribers as subs
from haishin.tokens import Purpose
from support import helpers
from support.inprocess import KEYRING, inprocess

OLD = "old@docomo.ne.jp"
NEW = "new@au.com"


def test_a_move_takes_active_and_bounced_subscriptions_only(db_url: str) -> None:
    with inprocess(db_url) as ip, ip.engine.begin() as conn:
        ctx = ip.ctx
        subs.activate(conn, "gomi-recycle", OLD, method="t", evidence="t")
        bounced = subs.activate(conn, "kenshin-info", OLD, method="t", evidence="t")
        subs.disable(conn, bounced.id, method="bounce")  # the old contract ended
        subs.activate(conn, "kaigo-yobou", OLD, method="t", evidence="t")
        subs.remove(conn, "kaigo-yobou", OLD)  # removed by staff: consent gone
        subs.ensure_pending(conn, "kosodate-news", OLD)  # never confirmed
        link = store.create_link(conn, OLD, dt.timedelta(hours=1))
        assert moves.request(conn, ctx, link, NEW, "192.0.2.1") is moves.Asked.SENT
        (move_id,) = conn.exec_driver_sql("SELECT id FROM address_moves").scalars().all()
        token = KEYRING.make(Purpose.MOVE, move_id, dt.datetime.now(dt.UTC) + ctx.ttl)
        done = moves.confirm(conn, ctx, token, "test", mail_welcome=False)
        assert done.verdict is moves.Confirmed.MOVED
        assert sorted(done.moved) == ["gomi-recycle", "kenshin-info"]
        new = {s: str(x.status) for s, x in subs.of_address(conn, NEW).items()}
        assert new == {"gomi-recycle": "active", "kenshin-info": "active"}
        old = {s: str(x.status) for s, x in subs.of_address(conn, OLD).items()}
        assert old == {
            "gomi-recycle": "unsubscribed",
            "kenshin-info": "disabled",
            "kaigo-yobou": "disabled",
            "kosodate-news": "pending",
        }
        # replayed: nothing more
        again = moves.confirm(conn, ctx, token, "test", mail_welcome=False)
        assert again.verdict is moves.Confirmed.EXPIRED
        # a move token is no page token, and the reverse
        page = KEYRING.make(Purpose.MYPAGE, link.id, link.expires_at)
        assert moves.confirm(conn, ctx, page, "t", mail_welcome=False).verdict is (
            moves.Confirmed.INVALID
        )


def _active(conn: sa.Connection, address: str) -> set[str]:
    return {s for s, x in subs.of_address(conn, address).items() if str(x.status) == "active"}


def _waits_for_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        query = (  # a row lock waits on a transaction id: pg_locks has no database for it
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        )
        return bool(conn.exec_driver_sql(query).scalar())


@pytest.mark.skipif(not helpers.pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing")
def test_a_move_confirmed_during_a_save_of_the_old_page_takes_what_it_saved() -> None:
    """The old page saves (a second channel) while the new address confirms: the move
    waits for the save and takes both channels. Before, it read the old address's
    channels without the save's and left the old address subscribed to it after moving."""
    with helpers.pg_database() as url, inprocess(url) as ip:
        ctx = ip.ctx
        with ip.engine.begin() as conn:
            subs.activate(conn, "gomi-recycle", OLD, method="t", evidence="t")
            link = store.create_link(conn, OLD, dt.timedelta(hours=1))
            assert moves.request(conn, ctx, link, NEW, "192.0.2.1") is moves.Asked.SENT
            (move_id,) = conn.exec_driver_sql("SELECT id FROM address_moves").scalars().all()
        token = KEYRING.make(Purpose.MOVE, move_id, dt.datetime.now(dt.UTC) + ctx.ttl)
        page = KEYRING.make(Purpose.MYPAGE, link.id, link.expires_at)
        done: list[moves.Result] = []

        def confirm() -> None:
            with ip.engine.begin() as conn:
                done.append(moves.confirm(conn, ctx, token, "test", mail_welcome=False))

        with ip.engine.connect() as saving, saving.begin():
            _, opened = mypage.open_link(saving, ctx, page, to_change=True)
            assert opened is not None
            mypage.save(saving, ctx, opened, {"gomi-recycle", "kenshin-info"}, "192.0.2.2")
            confirming = threading.Thread(target=confirm)
            confirming.start()
            deadline = time.monotonic() + 10
            while confirming.is_alive() and not _waits_for_a_lock(ip.engine):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        confirming.join(10)
        assert done and done[0].verdict is moves.Confirmed.MOVED
        with ip.engine.connect() as conn:
            assert _active(conn, NEW) == {"gomi-recycle", "kenshin-info"}
            assert _active(conn, OLD) == set()
