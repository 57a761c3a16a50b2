"""Issue 6, "Done when": bounces through a running `haishin serve`.

Real-world reports (Postfix, Exim, Gmail, docomo, au, a full mailbox, a Japanese
out-of-office reply) go by smtplib to a real VERP address whose token names a real outbound
row; a 5xx comes from the aiosmtpd smarthost at send time. Then the scores, the disable at
the threshold, `haishin bounces` and the weekly digest at the sink are checked.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import subprocess
from pathlib import Path

import sqlalchemy as sa

from haishin.bounces.record import service_day
from haishin.clock import utcnow
from haishin.store import bounces as stored
from haishin.store import open_store, subscribers
from haishin.store.states import QueueState
from support import helpers
from support.helpers import CONFIG, DOMAIN, HAISHIN
from support.smarthost import Sink
from support.verp import events, fanout_token, post_to, score, subscribe

SAMPLES = Path(__file__).parents[1] / "data" / "bounces"
SLUG = "kosodate-news"
MANAGER = "kosodate-kacho@city.kawasaki.example.jp"  # config/departments.yaml: 情報管理者
DOCOMO = "k-nakamura.0815@docomo.ne.jp"
OTHERS = {  # sample: the recipient it names, the score one report gives
    "postfix-5.1.1-user-unknown.eml": ("ichiro.suzuki@example.jp", 1.0),
    "exim-non-dsn.eml": ("jiro.tanaka@example.com", 1.0),
    "gmail-5.1.1.eml": ("saburo.sato@example.com", 1.0),
    "au-ezweb-iso-2022-jp.eml": ("taro_kawasaki-0123@ezweb.ne.jp", 1.0),
    "mailbox-full-5.2.2.eml": ("rokuro.kobayashi@example.jp", 0.5),
}
GONE = "gone.user@example.jp"


def _bounce(d: helpers.Daemon, token: str | None, sample: str) -> None:
    rcpt = f"{SLUG}-bounces{'+' + token if token else ''}@{DOMAIN}"
    with smtplib.SMTP(*d.smtp) as client:
        # the samples are stored with LF; SMTP carries CRLF. Reports come from the null sender
        raw = (SAMPLES / sample).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        client.sendmail("", [rcpt], raw)


def _processed(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT count(*) FROM inbound WHERE state <> 'new'")).scalar_one()
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HAISHIN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_bounces_through_the_daemon(tmp_path: Path, db_url: str, sink: Sink) -> None:
    engine = open_store(db_url)
    d = helpers.start(tmp_path, db_url, smarthost=sink.port)
    try:
        docomo = fanout_token(subscribe(engine, SLUG, DOCOMO))  # a post's return path

        # 1. an out-of-office reply to the return path (RFC 3834 §4) is not a bounce
        _bounce(d, docomo, "out-of-office-ja-iso-2022-jp.eml")
        helpers.wait_until(lambda: _processed(engine) == 1, what="auto-reply processed")
        assert score(engine, SLUG, DOCOMO) is None and events(engine) == []

        # 2. docomo's report: one point; a second bounced post the same day adds nothing
        _bounce(d, docomo, "docomo-550-unknown-user.eml")
        helpers.wait_until(lambda: len(events(engine)) == 1, what="first bounce")
        assert score(engine, SLUG, DOCOMO) == (1.0, "active")
        _bounce(d, post_to(engine, SLUG, DOCOMO), "docomo-550-unknown-user.eml")
        helpers.wait_until(lambda: len(events(engine)) == 2, what="second bounce")
        assert score(engine, SLUG, DOCOMO) == (1.0, "active")

        # 3. the other formats, each for the subscriber it names (these return paths name
        #    the outbound row instead, as other mail may)
        for sample, (address, _) in OTHERS.items():
            subscribe(engine, SLUG, address)
            _bounce(d, post_to(engine, SLUG, address), sample)
        # and a report to the plain bounces address (no token): recorded as unmatched
        _bounce(d, None, "gmail-5.1.1.eml")
        helpers.wait_until(lambda: len(events(engine)) == 8, what="all formats")
        for address, expected in OTHERS.values():
            assert score(engine, SLUG, address) == (expected, "active")
        assert events(engine)[-1][:3] == ("plain", "permanent", "unmatched")

        # 4. days 2 to 4 have passed with a bounce each (the state they leave, through the
        #    store API): today's report reaches the threshold of 5
        today = service_day(utcnow())
        with engine.begin() as conn:
            sub = subscribers.find(conn, SLUG, DOCOMO)
            assert sub is not None
            yesterday = today - dt.timedelta(days=1)
            stored.save_score(conn, sub.id, stored.StoredScore(4.0, yesterday, 1.0))
        _bounce(d, docomo.upper(), "docomo-550-unknown-user.eml")  # a server upper-cased it
        helpers.wait_until(lambda: len(events(engine)) == 9, what="disabling bounce")
        assert score(engine, SLUG, DOCOMO) == (5.0, "disabled")  # kept, not deleted
        assert events(engine)[-1] == ("verp", "permanent", "disabled", "5.0.0")

        # 5. a 5xx from the smarthost while sending counts the same way
        sink.answers[GONE] = f"550 5.1.1 <{GONE}>: Recipient address rejected"
        subscribe(engine, SLUG, GONE)
        post_to(engine, SLUG, GONE, state=QueueState.QUEUED)
        helpers.wait_until(lambda: score(engine, SLUG, GONE) is not None, what="5xx scored")
        assert score(engine, SLUG, GONE) == (1.0, "active")
        assert events(engine)[-1] == ("smtp", "permanent", "scored", "5.1.1")

        # 6. the report: masked unless the 情報管理者 asks for addresses
        config = ["--config", str(CONFIG), "--db", db_url]
        r = _cli("bounces", SLUG, *config)
        assert r.returncode == 0, r.stderr
        assert (
            "bounces by kind: permanent 8, temporary 1, refused 0, complaint 0, unmatched 1"
            in r.stdout
        )
        assert "disabled by bounces (1):" in r.stdout and "***@docomo.ne.jp" in r.stdout
        assert "scores above zero (7;" in r.stdout  # 5 formats, the 5xx, the disabled one
        assert DOCOMO not in r.stdout and "ichiro.suzuki" not in r.stdout
        shown = _cli("bounces", "report", SLUG, "--show-addresses", *config)
        assert f"{DOCOMO}\t{today}\t5.0.0" in shown.stdout

        # 7. the weekly digest, run on the next day: one mail to the 情報管理者
        tomorrow = (today + dt.timedelta(days=1)).isoformat()
        r = _cli("bounces", "digest", "--send", "--date", tomorrow, *config)
        assert r.returncode == 0, r.stderr
        assert f"{SLUG}: queued" in r.stdout
        (digest,) = sink.wait(1)
        assert digest.rcpts == [MANAGER] and digest.mail_from == f"{SLUG}-bounces@{DOMAIN}"
        msg = digest.msg
        assert "配信エラーの週次報告" in str(msg["Subject"]) and "子育て" in str(msg["Subject"])
        assert msg["Auto-Submitted"] == "auto-generated"
        body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "恒久的なエラー（宛先不明など）: 8 件" in body
        assert "一時的なエラー（メールボックス容量超過など）: 1 件" in body
        assert "配信先と照合できなかったエラー: 1 件" in body
        assert "配信を停止したアドレス（1 件）" in body and DOCOMO in body  # 第5条(2)
        assert "まだ停止していないアドレス: 6 件" in body
        assert "ichiro.suzuki" not in body  # bouncing, but not disabled
        # once per channel per week: a second run sends nothing
        again = _cli("bounces", "digest", "--send", "--date", tomorrow, *config)
        assert f"{SLUG}: already sent this week" in again.stdout
        helpers.wait_until(lambda: helpers.drained(engine), what="drain")
        assert len(sink.messages) == 1
        with engine.connect() as conn:  # 第4条(3): who read the addresses, who sent them
            audit = conn.execute(sa.text("SELECT action, target FROM audit_log ORDER BY id")).all()
        assert [tuple(a) for a in audit] == [("bounces.report", SLUG), ("bounces.digest", SLUG)]

        # 8. the disabled address subscribes again and confirms from the phone: active,
        #    with a clean bounce record
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail(
                DOCOMO, [f"{SLUG}-subscribe@{DOMAIN}"], b"From: " + DOCOMO.encode() + b"\r\n\r\n"
            )
        request = sink.wait(2)[1]
        assert request.rcpts == [DOCOMO]
        reply_to = str(request.msg["Reply-To"])
        reply = helpers.phone_reply(DOCOMO, reply_to, "RE: " + str(request.msg["Subject"]), "")
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail(DOCOMO, [reply_to], reply)
        assert "登録が完了しました" in str(sink.wait(3)[2].msg["Subject"])
        with engine.connect() as conn:
            sub = subscribers.find(conn, SLUG, DOCOMO)
        assert sub is not None and sub.status is subscribers.Status.ACTIVE
        assert score(engine, SLUG, DOCOMO) is None

        helpers.wait_until(lambda: helpers.drained(engine), what="drain")
        assert d.stop() == 0
        # 第4条: the log tells what happened, never whose address it was
        log = "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))
        assert "bounce inbound#" in log and "addr:" in log
        for address in [DOCOMO, GONE, MANAGER, *(a for a, _ in OTHERS.values())]:
            assert address not in log
        assert "flufl" not in log  # its per-detector lines stay below WARNING
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
