"""Hostile bounces (issue 11 item 9's suite, the bounce side; issue 12): each is accepted
with 250 (it reached our own return path: refusing it would make the remote MTA bounce
the bounce), answered by nobody, and moves nothing it must not. Nothing a report says is
evidence of whom it is about: only the HMAC-checked VERP token names our subscriber."""

from __future__ import annotations

import smtplib
from pathlib import Path

import sqlalchemy as sa

from haishin.store import open_store, subscribers
from support import helpers
from support.helpers import DOMAIN
from support.smarthost import Sink
from support.verp import fanout_token, score, subscribe

SLUG = "kosodate-news"
VICTIM = "hanako.yamada@example.jp"
OK = 250

_DSN = (
    "From: MAILER-DAEMON@mx.example.net\r\nTo: x@example.jp\r\nSubject: Undelivered\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
    'boundary="b"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n'
    "Reporting-MTA: dns; mx.example.net\r\n\r\n{blocks}--b--\r\n"
)
_BLOCK = "Final-Recipient: rfc822; {who}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
_ARF = (
    "From: abuse@isp.example\r\nTo: x@example.jp\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
    "--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
    "Original-Rcpt-To: someone.else@example.jp\r\n\r\n--f--\r\n"
)

CASES: dict[str, bytes] = {
    "empty": b"",
    # lines within RFC 5321 §4.5.3.1.6 (longer ones are the SMTP front end's 500)
    "binary garbage": b"\r\n".join(
        bytes(b for b in range(256) if b not in (10, 13))[i : i + 70] for i in range(0, 254, 70)
    )
    * 64,
    "multipart without any boundary line": b"Content-Type: multipart/report; boundary=zz\r\n\r\nno parts\r\n",
    "2,000 recipient blocks, none ours": _DSN.format(
        blocks="".join(_BLOCK.format(who=f"n{i}@example.net") for i in range(2000))
    ).encode(),
    "a DSN about someone else": _DSN.format(blocks=_BLOCK.format(who="other@example.jp")).encode(),
    "a complaint about someone else": _ARF.encode(),
    "rfc822 nested 60 deep": (b"Content-Type: message/rfc822\r\n\r\n" * 60)
    + b"Subject: x\r\n\r\nx\r\n",
    "a 200 kB folded header": b"Subject: " + b"\r\n A" * 100_000 + b"\r\n\r\nbody\r\n",
    "JSON nested 5,000 deep": b"Subject: AWS Notification\r\n\r\n"
    + b'{"notificationType":\r\n' * 5000,
    "CR-only line ends": _DSN.format(blocks=_BLOCK.format(who="cr@example.net"))
    .replace("\r\n", "\r")
    .encode(),
}


def _processed(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT count(*) FROM inbound WHERE state <> 'new'")).scalar_one()
        )


def test_hostile_bounces_are_recorded_never_answered(
    tmp_path: Path, sqlite_url: str, sink: Sink
) -> None:
    db_url = sqlite_url
    engine = open_store(db_url)
    d = helpers.start(tmp_path, db_url, smarthost=sink.port)
    try:
        token = fanout_token(subscribe(engine, SLUG, VICTIM))
        rcpt = f"{SLUG}-bounces+{token}@{DOMAIN}"
        for n, (name, raw) in enumerate(CASES.items(), start=1):
            with smtplib.SMTP(*d.smtp) as client:
                client.ehlo("mx.example.net")
                assert client.mail("")[0] == OK, name
                assert client.rcpt(rcpt)[0] == OK, name
                code, _ = client.data(raw if raw else b"\r\n")
                assert code == OK, name
            helpers.wait_until(lambda n=n: _processed(engine) == n, what=f"{name} processed")
        with engine.connect() as conn:
            sub = subscribers.find(conn, SLUG, VICTIM)
        # none of them could unsubscribe or disable our subscriber; what names nobody
        # readable weighs as "unknown" at most (0.5 once per day)
        assert sub is not None and sub.status is subscribers.Status.ACTIVE
        assert score(engine, SLUG, VICTIM) in (None, (0.5, "active"))
        assert helpers.drained(engine) and sink.messages == []  # nothing answered
        assert d.stop() == 0
        log = "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))
        assert "Traceback" not in log and VICTIM not in log
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
