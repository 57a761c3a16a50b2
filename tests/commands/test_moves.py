"""Issue 14: what a change of address takes along (commands/moves.py), on a real store."""

from __future__ import annotations

import datetime as dt

from haishin.commands import moves
from haishin.store import mypage as store
from haishin.store import subscribers as subs
from haishin.tokens import Purpose
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
