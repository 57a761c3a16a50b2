"""Issue 5, "Done when" 1: the whole subscription life over real SMTP and HTTP.

`haishin serve` runs as a subprocess; a real smtplib client writes to it; its outbound
mail goes to an aiosmtpd sink in this test. SQLite file and PostgreSQL both.
"""

from __future__ import annotations

import smtplib
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from support import helpers
from support.helpers import DOMAIN
from support.smarthost import Sink

CITIZEN = "abc..def@docomo.ne.jp"  # a real carrier address that breaks RFC 5322
SLUG = "gomi-recycle"


def status(engine: sa.Engine) -> str | None:
    with engine.connect() as c:
        return c.execute(
            sa.text("SELECT status FROM subscribers WHERE channel = :c AND address_key = :a"),
            {"c": SLUG, "a": CITIZEN},
        ).scalar()


def send(d: helpers.Daemon, rcpt: str, raw: bytes, sender: str = CITIZEN) -> None:
    with smtplib.SMTP(*d.smtp) as client:
        client.sendmail(sender, [rcpt], raw)


def http(d: helpers.Daemon, path: str, data: bytes | None = None) -> tuple[int, str]:
    url = path if path.startswith("http") else f"http://{d.http[0]}:{d.http[1]}{path}"
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_subscribe_confirm_unsubscribe_resubscribe_one_click(
    tmp_path: Path, db_url: str, sink: Sink
) -> None:
    d = helpers.start(tmp_path, db_url, smarthost=sink.port)
    engine = sa.create_engine(db_url)
    try:
        # 1. an empty mail to <slug>-subscribe@ is enough (空メール登録)
        send(d, f"{SLUG}-subscribe@{DOMAIN}", b"From: " + CITIZEN.encode() + b"\r\n\r\n")
        confirmation = sink.wait(1)[0]
        assert confirmation.rcpts == [CITIZEN]
        assert confirmation.mail_from == f"{SLUG}-bounces@{DOMAIN}"  # never answered: no loop
        msg = confirmation.msg
        assert msg["Auto-Submitted"] == "auto-replied"
        reply_to = str(msg["Reply-To"])
        assert reply_to.startswith(f"{SLUG}-confirm+") and reply_to.endswith(f"@{DOMAIN}")
        body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "ごみ・リサイクル情報" in body and "無視" in body and "English" in body
        assert "減量推進課" in body  # who runs it
        assert status(engine) == "pending"

        # 2. a phone replies: ISO-2022-JP with CP50220 characters, subject "RE:"
        raw = helpers.phone_reply(
            CITIZEN, reply_to, "RE: " + str(msg["Subject"]), "登録します①\n> 元のメール"
        )
        send(d, reply_to, raw)
        welcome = sink.wait(2)[1].msg
        assert "登録が完了しました" in str(welcome["Subject"])
        assert status(engine) == "active"
        with engine.connect() as c:
            method, evidence = c.execute(
                sa.text("SELECT consent_method, consent_evidence FROM subscribers")
            ).one()
        assert method == "mail-reply" and "inbound#" in evidence

        # 3. unsubscribe by mail is confirmed too (From can be forged)
        send(d, f"{SLUG}-unsubscribe@{DOMAIN}", b"Subject: stop\r\n\r\n")
        unsub_confirm = sink.wait(3)[2].msg
        assert "配信停止の確認" in str(unsub_confirm["Subject"])
        assert status(engine) == "active"
        # this time the reply goes to -request@ with a full-width ＲＥ： and the token in
        # the subject, as some phone apps drop the Reply-To
        reply = EmailMessage()
        reply["From"] = CITIZEN
        reply["To"] = f"{SLUG}-request@{DOMAIN}"
        reply["Subject"] = "ＲＥ：" + str(unsub_confirm["Subject"])
        reply.set_content("")
        send(d, f"{SLUG}-request@{DOMAIN}", reply.as_bytes())
        goodbye = sink.wait(4)[3].msg
        assert "配信を停止しました" in str(goodbye["Subject"])
        assert status(engine) == "unsubscribed"

        # 4. re-subscribe, confirmed on the web page: GET shows a button, only POST acts
        send(d, f"{SLUG}-subscribe@{DOMAIN}", b"\r\n")
        again = sink.wait(5)[4].msg
        text = again.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        url = next(w for w in text.split() if "/confirm/" in w)
        code, page = http(d, url)
        assert code == 200 and '<form method="post">' in page
        assert status(engine) == "unsubscribed"  # a link scanner's GET changed nothing
        code, page = http(d, url, b"")
        assert code == 200 and "登録が完了しました" in page
        assert status(engine) == "active"
        welcome2 = sink.wait(6)[5].msg
        text = welcome2.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        one_click = next(w for w in text.split() if "/unsubscribe/" in w)

        # 5. RFC 8058 one-click: POST List-Unsubscribe=One-Click, no confirmation
        code, page = http(d, one_click, b"List-Unsubscribe=One-Click")
        assert code == 200
        assert status(engine) == "unsubscribed"
        helpers.wait_until(lambda: helpers.drained(engine), what="drain")
        code, health = http(d, "/healthz")
        assert code == 200 and '"status": "ok"' in health
        assert d.stop() == 0
        # 第4条: the log shows what happened, never whose address it was
        log = "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))
        assert "inbound#" in log and "addr:" in log
        assert CITIZEN not in log and "docomo" not in log
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
