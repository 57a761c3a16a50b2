"""A real post's return path, bounced: the posting flow and the bounce score meet.

A post goes the way of posting/test_e2e.py (held, confirmed by a phone, fanned out), here
in process (support/inprocess.py) on SQLite and PostgreSQL; docomo's report for one
recipient then comes back to the very return path that recipient's copy carries in the
outbound queue, and counts against that subscription only. The same return path through a
running daemon: bounces/test_served.py (reports by SMTP) and posting/test_e2e.py (the post
at the smarthost).
"""

from __future__ import annotations

from email import policy
from pathlib import Path

from haishin.store.states import MessageKind
from support import helpers
from support import posting as p
from support.helpers import DOMAIN
from support.inprocess import inprocess
from support.verp import events, score

SAMPLES = Path(__file__).parents[1] / "data" / "bounces"
VICTIM = "abc..def@docomo.ne.jp"  # one of posting.ACTIVE


def test_a_posts_return_path_scores_its_recipient(db_url: str) -> None:
    with inprocess(db_url) as ip:
        engine = ip.engine
        p.populate(engine)
        post = p.post_message("粗大ごみの受付について", "受付時間が変わります。\n")
        ip.deliver(post.as_bytes(policy=policy.SMTP), p.SENDER, [f"{p.SLUG}@{DOMAIN}"])
        (request,) = ip.mail(p.SENDER, "投稿の確認")
        reply_to = str(request.msg["Reply-To"])
        raw = helpers.phone_reply(p.SENDER, reply_to, "RE: " + request.subject, "")
        ip.deliver(raw, p.SENDER, [reply_to])
        assert ip.release() == 1
        delivered = [
            q
            for q in ip.queued(kind=MessageKind.POST)
            if q.mail_from.startswith(f"{p.SLUG}-bounces+")
        ]
        assert len(delivered) == len(p.ACTIVE)
        (copy,) = [q for q in delivered if q.rcpt == VICTIM]
        return_path = copy.mail_from  # <slug>-bounces+<token>@, per subscriber

        # docomo's MX refuses it later; Postfix's report goes to the return path
        report = (SAMPLES / "docomo-550-unknown-user.eml").read_bytes()
        report = report.replace(b"k-nakamura.0815@docomo.ne.jp", VICTIM.encode())
        report = report.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        ip.deliver(report, "", [return_path])
        assert events(engine) == [("verp", "permanent", "scored", "5.0.0")]
        assert score(engine, p.SLUG, VICTIM) == (1.0, "active")
        for other in p.ACTIVE:
            if other != VICTIM:
                assert score(engine, p.SLUG, other) is None
