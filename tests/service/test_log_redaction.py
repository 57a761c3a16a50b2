"""第4条(3), design.md: no log line holds a subscriber's address. A subscribe round trip
through the real daemon, logging at DEBUG in both formats, with a smarthost that refuses
one confirmation by quoting the address back (as real servers do): the addresses appear
nowhere in the log, and each appears as its keyed mark (redact.py), so an operator can
still follow one address from line to line."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.tokens import Keyring
from support import helpers
from support.helpers import DOMAIN
from support.smarthost import Sink

SLUG = "gomi-recycle"
CITIZEN = "Hanako.Redact-Test@docomo.ne.jp"  # mixed case: servers echo it either way
REFUSED = "taro.unknown-test@ezweb.ne.jp"
KEY = Keyring(b"test-secret-0123456789abcdef")  # the key helpers.start gives the daemon


def _send(d: helpers.Daemon, sender: str, rcpt: str, raw: bytes) -> None:
    with smtplib.SMTP(*d.smtp) as client:
        client.sendmail(sender, [rcpt], raw)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_log_line_of_a_subscribe_round_trip_holds_the_address(
    tmp_path: Path, sink: Sink, log_format: str
) -> None:
    sink.answers[REFUSED] = f"550 5.1.1 <{REFUSED}>: Recipient address rejected: User unknown"
    db_url = f"sqlite:///{tmp_path / 'haishin.db'}"
    d = helpers.start(
        tmp_path, db_url, smarthost=sink.port, extra=["--verbose", "--log-format", log_format]
    )
    engine = sa.create_engine(db_url)
    try:
        subscribe = f"{SLUG}-subscribe@{DOMAIN}"
        _send(d, CITIZEN, subscribe, b"From: " + CITIZEN.encode() + b"\r\n\r\n")
        confirmation = sink.wait(1)[0].msg
        reply_to = str(confirmation["Reply-To"])
        raw = helpers.phone_reply(CITIZEN, reply_to, "RE: " + str(confirmation["Subject"]), "")
        _send(d, CITIZEN, reply_to, raw)
        welcome = sink.wait(2)[1].msg
        assert "登録が完了しました" in str(welcome["Subject"])
        _send(d, REFUSED, subscribe, b"From: " + REFUSED.encode() + b"\r\n\r\n")
        helpers.wait_until(lambda: helpers.drained(engine), what="drain")
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
    log = "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))  # through the stop
    assert "outbound#" in log and "5.1.1" in log  # the refusal was logged, its address not
    for address in (CITIZEN, REFUSED):
        local, _, domain = address.lower().partition("@")
        assert local not in log.lower() and domain not in log.lower(), address
        assert KEY.redact(address) in log, address  # the same mark in every line
