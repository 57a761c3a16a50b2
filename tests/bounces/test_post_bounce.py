"""A real post's return path, bounced: the posting flow and the bounce score meet.

A post goes through `haishin serve` as in test_posting_e2e.py (held, confirmed by a phone,
fanned out to the sink); docomo's report for one recipient then comes back to the very
return path that recipient's copy carried, and counts against that subscription only.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import sqlalchemy as sa

from support import helpers
from support import posting as p
from support.smarthost import Sink
from support.verp import events, score

SAMPLES = Path(__file__).parents[1] / "data" / "bounces"
VICTIM = "abc..def@docomo.ne.jp"  # one of posting.ACTIVE


def test_a_posts_return_path_scores_its_recipient(
    tmp_path: Path, sqlite_url: str, sink: Sink
) -> None:
    keys = p.dkim_keys(tmp_path)
    extra = [*keys.args, "--archive", str(tmp_path / "archive"), "--release-poll", "0.1"]
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, extra=extra)
    engine = sa.create_engine(sqlite_url)
    try:
        p.populate(engine)
        p.send(d, p.post_message("粗大ごみの受付について", "受付時間が変わります。\n"))
        request = p.wait_mail(sink, p.SENDER, "投稿の確認")
        reply_to = str(request.msg["Reply-To"])
        raw = helpers.phone_reply(p.SENDER, reply_to, "RE: " + str(request.msg["Subject"]), "")
        p.send_to(d, reply_to, raw)
        helpers.wait_until(lambda: len(p.delivered(sink)) == len(p.ACTIVE), what="delivery")
        (copy,) = [m for m in p.delivered(sink) if m.rcpts == [VICTIM]]
        return_path = copy.mail_from  # <slug>-bounces+<token>@, per subscriber

        # docomo's MX refuses it later; Postfix's report goes to the return path
        report = (SAMPLES / "docomo-550-unknown-user.eml").read_bytes()
        report = report.replace(b"k-nakamura.0815@docomo.ne.jp", VICTIM.encode())
        report = report.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail("", [return_path], report)
        helpers.wait_until(lambda: events(engine), what="bounce recorded")
        assert events(engine) == [("verp", "permanent", "scored", "5.0.0")]
        assert score(engine, p.SLUG, VICTIM) == (1.0, "active")
        for other in p.ACTIVE:
            if other != VICTIM:
                assert score(engine, p.SLUG, other) is None
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
