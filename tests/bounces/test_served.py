"""Issue 6, "Done when": bounces recorded and scored.

Real-world reports (Postfix, Exim, Gmail, docomo, au, a full mailbox, a Japanese
out-of-office reply) go to a real VERP address whose token names a real outbound row; a 5xx
comes from the smarthost at send time. Then the scores, the disable at the threshold,
`haishin bounces`, the weekly digest and a new subscription of the disabled address.

The handlers' cases run in process (support/inprocess.py: the spool, the router, the queue),
on SQLite and PostgreSQL; one test goes through a running `haishin serve` (smtplib in, the
aiosmtpd smarthost out, the CLI as a subprocess) and reads the daemon's log.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from haishin.bounces.record import service_day
from haishin.cli import cli
from haishin.clock import utcnow
from haishin.store import bounces as stored
from haishin.store import open_store, subscribers
from haishin.store.states import MessageKind, QueueState
from support import helpers
from support.helpers import CONFIG, DOMAIN, HAISHIN
from support.inprocess import InProcess, Queued, inprocess
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


def _report(sample: str) -> bytes:
    # the samples are stored with LF; SMTP carries CRLF
    return (SAMPLES / sample).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _rcpt(token: str | None) -> str:
    return f"{SLUG}-bounces{'+' + token if token else ''}@{DOMAIN}"


def _bounce(d: helpers.Daemon, token: str | None, sample: str) -> None:
    with smtplib.SMTP(*d.smtp) as client:
        client.sendmail("", [_rcpt(token)], _report(sample))  # reports come from the null sender


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


def _run(*args: str) -> str:
    """The CLI in process; its standard output."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def ip(db_url: str) -> Iterator[InProcess]:
    with inprocess(db_url) as handlers:
        yield handlers


def test_bounces_recorded_and_scored(ip: InProcess, db_url: str) -> None:
    engine = ip.engine

    def bounce(token: str | None, sample: str) -> None:
        ip.deliver(_report(sample), "", [_rcpt(token)])

    docomo = fanout_token(subscribe(engine, SLUG, DOCOMO))  # a post's return path

    # 1. an out-of-office reply to the return path (RFC 3834 §4) is not a bounce
    bounce(docomo, "out-of-office-ja-iso-2022-jp.eml")
    assert _processed(engine) == 1
    assert score(engine, SLUG, DOCOMO) is None and events(engine) == []

    # 2. docomo's report: one point; a second bounced post the same day adds nothing
    bounce(docomo, "docomo-550-unknown-user.eml")
    assert len(events(engine)) == 1
    assert score(engine, SLUG, DOCOMO) == (1.0, "active")
    bounce(post_to(engine, SLUG, DOCOMO), "docomo-550-unknown-user.eml")
    assert len(events(engine)) == 2
    assert score(engine, SLUG, DOCOMO) == (1.0, "active")

    # 3. the other formats, each for the subscriber it names (these return paths name
    #    the outbound row instead, as other mail may)
    for sample, (address, _) in OTHERS.items():
        subscribe(engine, SLUG, address)
        bounce(post_to(engine, SLUG, address), sample)
    # and a report to the plain bounces address (no token): recorded as unmatched
    bounce(None, "gmail-5.1.1.eml")
    assert len(events(engine)) == 8
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
    bounce(docomo.upper(), "docomo-550-unknown-user.eml")  # a server upper-cased it
    assert len(events(engine)) == 9
    assert score(engine, SLUG, DOCOMO) == (5.0, "disabled")  # kept, not deleted
    assert events(engine)[-1] == ("verp", "permanent", "disabled", "5.0.0")

    # 5. a 5xx from the smarthost while sending counts the same way
    subscribe(engine, SLUG, GONE)
    post_to(engine, SLUG, GONE, state=QueueState.QUEUED)
    ip.refused(GONE, f"550 5.1.1 <{GONE}>: Recipient address rejected")
    assert score(engine, SLUG, GONE) == (1.0, "active")
    assert events(engine)[-1] == ("smtp", "permanent", "scored", "5.1.1")

    # 6. the report: masked unless the 情報管理者 asks for addresses
    config = ["--config", str(CONFIG), "--db", db_url]
    out = _run("bounces", SLUG, *config)
    assert "bounces by kind: permanent 8, temporary 1, refused 0, complaint 0, unmatched 1" in out
    assert "disabled by bounces (1):" in out and "***@docomo.ne.jp" in out
    assert "scores above zero (7;" in out  # 5 formats, the 5xx, the disabled one
    assert DOCOMO not in out and "ichiro.suzuki" not in out
    shown = _run("bounces", "report", SLUG, "--show-addresses", *config)
    assert f"{DOCOMO}\t{today}\t5.0.0" in shown

    # 7. the weekly digest, run on the next day: one mail to the 情報管理者
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    out = _run("bounces", "digest", "--send", "--date", tomorrow, *config)
    assert f"{SLUG}: queued" in out
    (digest,) = ip.queued(kind=MessageKind.DIGEST)
    assert digest.rcpt == MANAGER and digest.mail_from == f"{SLUG}-bounces@{DOMAIN}"
    msg = digest.msg
    assert "配信エラーの週次報告" in str(msg["Subject"]) and "子育て" in str(msg["Subject"])
    assert msg["Auto-Submitted"] == "auto-generated"
    body = digest.body
    assert "恒久的なエラー（宛先不明など）: 8 件" in body
    assert "一時的なエラー（メールボックス容量超過など）: 1 件" in body
    assert "配信先と照合できなかったエラー: 1 件" in body
    assert "配信を停止したアドレス（1 件）" in body and DOCOMO in body  # 第5条(2)
    assert "まだ停止していないアドレス: 6 件" in body
    assert "ichiro.suzuki" not in body  # bouncing, but not disabled
    # once per channel per week: a second run sends nothing
    again = _run("bounces", "digest", "--send", "--date", tomorrow, *config)
    assert f"{SLUG}: already sent this week" in again
    # the digest is the one message waiting to be sent (the posts above were sent before)
    assert [q.id for q in ip.queued() if q.state is QueueState.QUEUED] == [digest.id]
    with engine.connect() as conn:  # 第4条(3): who read the addresses, who sent them
        audit = conn.execute(sa.text("SELECT action, target FROM audit_log ORDER BY id")).all()
    assert [tuple(a) for a in audit] == [("bounces.report", SLUG), ("bounces.digest", SLUG)]

    # 8. the disabled address subscribes again and confirms from the phone: active,
    #    with a clean bounce record
    subscribe_at = f"{SLUG}-subscribe@{DOMAIN}"
    ip.deliver(b"From: " + DOCOMO.encode() + b"\r\n\r\n", DOCOMO, [subscribe_at])

    def answers() -> list[Queued]:  # to DOCOMO, beside the posts of post_to
        return [q for q in ip.queued(DOCOMO) if q.kind is not MessageKind.POST]

    (request,) = answers()
    reply_to = str(request.msg["Reply-To"])
    reply = helpers.phone_reply(DOCOMO, reply_to, "RE: " + request.subject, "")
    ip.deliver(reply, DOCOMO, [reply_to])
    assert "登録が完了しました" in answers()[1].subject
    with engine.connect() as conn:
        sub = subscribers.find(conn, SLUG, DOCOMO)
    assert sub is not None and sub.status is subscribers.Status.ACTIVE
    assert score(engine, SLUG, DOCOMO) is None


def test_bounces_through_the_daemon(tmp_path: Path, sqlite_url: str, sink: Sink) -> None:
    """The whole system once: every kind of report by SMTP through the front end and the
    worker, a 5xx from the smarthost at send time, the digest queued by the CLI and sent by
    the daemon; the daemon's log tells what happened, never whose address it was (第4条)."""
    engine = open_store(sqlite_url)
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port)
    try:
        docomo = fanout_token(subscribe(engine, SLUG, DOCOMO))
        _bounce(d, docomo, "out-of-office-ja-iso-2022-jp.eml")
        helpers.wait_until(lambda: _processed(engine) == 1, what="auto-reply processed")
        assert score(engine, SLUG, DOCOMO) is None and events(engine) == []
        _bounce(d, docomo, "docomo-550-unknown-user.eml")
        helpers.wait_until(lambda: len(events(engine)) == 1, what="first bounce")
        assert score(engine, SLUG, DOCOMO) == (1.0, "active")
        # every report format, the unmatched one and the disable at the threshold: each
        # handler's log lines are in the log read below
        for sample, (address, _) in OTHERS.items():
            subscribe(engine, SLUG, address)
            _bounce(d, post_to(engine, SLUG, address), sample)
        _bounce(d, None, "gmail-5.1.1.eml")
        helpers.wait_until(lambda: len(events(engine)) == 7, what="all formats")
        for address, expected in OTHERS.values():
            assert score(engine, SLUG, address) == (expected, "active")
        with engine.begin() as conn:
            sub = subscribers.find(conn, SLUG, DOCOMO)
            assert sub is not None
            yesterday = service_day(utcnow()) - dt.timedelta(days=1)
            stored.save_score(conn, sub.id, stored.StoredScore(4.0, yesterday, 1.0))
        _bounce(d, docomo.upper(), "docomo-550-unknown-user.eml")
        helpers.wait_until(lambda: len(events(engine)) == 8, what="disabling bounce")
        assert score(engine, SLUG, DOCOMO) == (5.0, "disabled")

        sink.answers[GONE] = f"550 5.1.1 <{GONE}>: Recipient address rejected"
        subscribe(engine, SLUG, GONE)
        post_to(engine, SLUG, GONE, state=QueueState.QUEUED)
        helpers.wait_until(lambda: score(engine, SLUG, GONE) is not None, what="5xx scored")
        assert score(engine, SLUG, GONE) == (1.0, "active")
        assert events(engine)[-1] == ("smtp", "permanent", "scored", "5.1.1")

        tomorrow = (service_day(utcnow()) + dt.timedelta(days=1)).isoformat()
        config = ["--config", str(CONFIG), "--db", sqlite_url]
        r = _cli("bounces", "digest", "--send", "--date", tomorrow, *config)
        assert r.returncode == 0, r.stderr
        assert f"{SLUG}: queued" in r.stdout
        (digest,) = sink.wait(1)
        assert digest.rcpts == [MANAGER] and digest.mail_from == f"{SLUG}-bounces@{DOMAIN}"
        assert "配信エラーの週次報告" in str(digest.msg["Subject"])

        helpers.wait_until(lambda: helpers.drained(engine), what="drain")
        assert len(sink.messages) == 1
        assert d.stop() == 0
        # 第4条: the log tells what happened, never whose address it was
        log = "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))
        assert "bounce inbound#" in log and "addr:" in log
        for who in [DOCOMO, GONE, MANAGER, *(a for a, _ in OTHERS.values())]:
            assert who not in log
        assert "flufl" not in log  # its per-detector lines stay below WARNING
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
