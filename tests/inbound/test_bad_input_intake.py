"""Issue 11, items 2 and 5 (and 9): hostile envelopes and token addresses, as an attacker
would send them to `haishin serve` (subprocess, SQLite), each with its asserted answer.

- paths that cannot be stored: refused at MAIL or RCPT with 501/553 and a reason;
- forged, expired and wrong-purpose tokens in `-confirm+`, `-unsubscribe+` and
  `-bounces+` addresses: refused at RCPT with 550 saying which;
- a stranger writing to `<slug>@`: forwarded to the channel's 情報管理者, never answered.

For every case, nothing is sent to the case's sender (sink and outbound table), and at
the end the daemon's log holds no traceback.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.tokens import Keyring, Purpose
from support import helpers, smarthost
from support.helpers import DOMAIN
from support.statuscodes import Code

KEY = Keyring(b"test-secret-0123456789abcdef")  # helpers.start's HAISHIN_SECRET
SLUG = "gomi-recycle"
MANAGER = "genryo-kacho@city.kawasaki.example.jp"  # 情報管理者 of gomi-recycle


def tok(purpose: Purpose, hours: float = 24, ident: int = 1) -> str:
    return KEY.make(purpose, ident, dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours))


def _one_letter_changed(token: str) -> str:
    """The token with its first letter changed. Not its last: 26 base32 letters hold 130
    bits for 128, so the last letter's low two bits are padding, and a last letter changed
    within its group of four (q, r, s, t) decodes to the same token (one run in eight)."""
    return ("b" if token.startswith("a") else "a") + token[1:]


def addr(suffix: str, token: str) -> str:
    return f"{SLUG}{suffix}+{token}@{DOMAIN}"


@dataclass(frozen=True)
class Refused:
    """A raw envelope refused at `stage` with `code`, the reply text holding `says`."""

    name: str
    mail_from: bytes
    rcpt: bytes
    stage: str
    code: int
    says: str


SUB = f"{SLUG}-subscribe@{DOMAIN}".encode()

REFUSED: list[Refused] = [
    # --- paths that cannot be stored (item 2) ---------------------------------------------
    Refused(
        "from-not-utf8",
        b"<\xff\xfe@example.org>",
        SUB,
        "MAIL",
        Code.SYNTAX_ERROR,
        "not valid UTF-8",
    ),
    Refused(
        "from-nul", b"<a\x00b@example.org>", SUB, "MAIL", Code.SYNTAX_ERROR, "Control characters"
    ),
    Refused(
        "from-del", b"<a\x7fb@example.org>", SUB, "MAIL", Code.SYNTAX_ERROR, "Control characters"
    ),
    Refused(
        "from-c1",
        "<a\x85b@example.org>".encode(),
        SUB,
        "MAIL",
        Code.SYNTAX_ERROR,
        "Control characters",
    ),
    Refused(
        "from-quoted-bytes",
        b'<"\xff"@example.org>',
        SUB,
        "MAIL",
        Code.SYNTAX_ERROR,
        "not valid UTF-8",
    ),
    Refused(
        "from-too-long", b"<" + b"a" * 250 + b"@example.org>", SUB, "MAIL", 501, "Path too long"
    ),
    Refused(
        "from-8bit-no-smtputf8",
        "<山田@example.org>".encode(),
        SUB,
        "MAIL",
        Code.MAILBOX_NAME_NOT_ALLOWED,
        "SMTPUTF8",
    ),
    Refused(
        "rcpt-not-utf8",
        b"<x@example.org>",
        SUB + b"\xff",
        "RCPT",
        Code.SYNTAX_ERROR,
        "not valid UTF-8",
    ),
    Refused(
        "rcpt-nul",
        b"<x@example.org>",
        b"a\x00" + SUB,
        "RCPT",
        Code.SYNTAX_ERROR,
        "Control characters",
    ),
    Refused(
        "rcpt-too-long",
        b"<x@example.org>",
        b"gomi-recycle-confirm+" + b"a" * 240 + b"@" + DOMAIN.encode(),
        "RCPT",
        501,
        "Path too long",
    ),
    # --- tokens (item 5) ------------------------------------------------------------------
    *(
        Refused(
            f"forged{suffix}",
            b"<victim@example.org>",
            addr(suffix, "a" * 26).encode(),
            "RCPT",
            550,
            "not valid",
        )
        for suffix in ("-confirm", "-unsubscribe", "-bounces")
    ),
    Refused(
        "forged-uppercased",
        b"<victim@example.org>",
        addr("-confirm", "B" * 26).upper().encode(),
        "RCPT",
        550,
        "not valid",
    ),
    Refused(
        "forged-one-letter-changed",
        b"<victim@example.org>",
        addr("-confirm", _one_letter_changed(tok(Purpose.CONFIRM))).encode(),
        "RCPT",
        550,
        "not valid",
    ),
    Refused(
        "forged-other-key",
        b"<victim@example.org>",
        addr(
            "-confirm",
            Keyring(b"another-key-0123456789").make(
                Purpose.CONFIRM, 1, dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
            ),
        ).encode(),
        "RCPT",
        550,
        "not valid",
    ),
    Refused(
        "expired-confirm",
        b"<citizen@example.org>",
        addr("-confirm", tok(Purpose.CONFIRM, hours=-2)).encode(),
        "RCPT",
        550,
        "expired (its token was valid until",
    ),
    Refused(
        "expired-post-approval",
        b"<staff@example.org>",
        addr("-confirm", tok(Purpose.POST_APPROVE, hours=-2)).encode(),
        "RCPT",
        550,
        f"new request to {SLUG}-request@{DOMAIN}",
    ),
    Refused(
        "expired-unsubscribe",
        b"<citizen@example.org>",
        addr("-unsubscribe", tok(Purpose.UNSUBSCRIBE, hours=-2)).encode(),
        "RCPT",
        550,
        f"write to {SLUG}-unsubscribe@{DOMAIN}",
    ),
    Refused(
        "expired-verp",
        b"<>",
        addr("-bounces", tok(Purpose.VERP, hours=-2)).encode(),
        "RCPT",
        550,
        "expired",
    ),
    Refused(
        "unsubscribe-token-as-confirm",
        b"<victim@example.org>",
        addr("-confirm", tok(Purpose.UNSUBSCRIBE)).encode(),
        "RCPT",
        550,
        "another kind of address",
    ),
    Refused(
        "confirm-token-as-unsubscribe",
        b"<victim@example.org>",
        addr("-unsubscribe", tok(Purpose.CONFIRM)).encode(),
        "RCPT",
        550,
        "another kind of address",
    ),
    Refused(
        "verp-token-as-unsubscribe",
        b"<victim@example.org>",
        addr("-unsubscribe", tok(Purpose.VERP)).encode(),
        "RCPT",
        550,
        "another kind of address",
    ),
    Refused(
        "confirm-token-as-bounces",
        b"<>",
        addr("-bounces", tok(Purpose.CONFIRM)).encode(),
        "RCPT",
        550,
        "another kind of address",
    ),
]


def _line(f: socket.SocketIO | object) -> tuple[int, str]:
    text = ""
    while True:
        line = f.readline()  # type: ignore[attr-defined]
        if not line:
            return 0, text
        text += line.decode(errors="replace")
        if line[3:4] != b"-":
            return int(line[:3]), text


def _raw_session(port: int, mail_from: bytes, rcpt: bytes) -> tuple[str, int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=helpers.WAIT) as s:
        f = s.makefile("rb")
        _line(f)
        s.sendall(b"EHLO attacker.example.net\r\n")
        _line(f)
        for stage, line in (
            ("MAIL", b"MAIL FROM:" + mail_from),
            ("RCPT", b"RCPT TO:<" + rcpt + b">"),
        ):
            s.sendall(line + b"\r\n")
            code, text = _line(f)
            if code != 250:
                s.sendall(b"QUIT\r\n")
                return stage, code, text
        s.sendall(b"QUIT\r\n")
        return "accepted", Code.OK, ""


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[helpers.Daemon, smarthost.Sink, sa.Engine, Path]]:
    tmp = tmp_path_factory.mktemp("intake")
    url = f"sqlite:///{tmp / 'haishin.db'}"
    with smarthost.sink() as s:
        d = helpers.start(tmp, url, smarthost=s.port)
        engine = sa.create_engine(url)
        try:
            yield d, s, engine, tmp
        finally:
            if d.proc.poll() is None:
                d.stop()
            engine.dispose()


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_refused_at_the_command(
    case: Refused, daemon: tuple[helpers.Daemon, smarthost.Sink, sa.Engine, Path]
) -> None:
    d, _, _, _ = daemon
    stage, code, text = _raw_session(d.smtp[1], case.mail_from, case.rcpt)
    assert (stage, code) == (case.stage, case.code), text
    assert case.says in text, text


def test_a_genuine_token_of_each_address_is_accepted(
    daemon: tuple[helpers.Daemon, smarthost.Sink, sa.Engine, Path],
) -> None:
    d, _, _, _ = daemon
    for suffix, purpose in [
        ("-confirm", Purpose.CONFIRM),
        ("-confirm", Purpose.POST_APPROVE),
        ("-confirm", Purpose.POST_WITHDRAW),
        ("-unsubscribe", Purpose.UNSUBSCRIBE),
        ("-bounces", Purpose.VERP),
        ("-bounces", Purpose.BOUNCE),
    ]:
        token = tok(purpose)
        for rcpt in (addr(suffix, token), addr(suffix, token).upper()):  # a server may uppercase
            assert _raw_session(d.smtp[1], b"<x@example.org>", rcpt.encode())[:2] == (
                "accepted",
                250,
            ), (suffix, purpose)


def _send(d: helpers.Daemon, sender: str, rcpt: str, headers: str = "") -> None:
    raw = f"From: {sender}\r\nSubject: 質問です\r\n{headers}\r\n収集日について教えてください\r\n"
    with smtplib.SMTP(*d.smtp, timeout=helpers.WAIT) as c:
        c.sendmail(sender, [rcpt], raw.encode())


def _outbound_to(engine: sa.Engine, rcpt: str) -> int:
    with engine.connect() as c:
        return int(
            c.execute(
                sa.text("SELECT count(*) FROM outbound WHERE rcpt = :r"), {"r": rcpt}
            ).scalar_one()
        )


def _forwards_from(engine: sa.Engine, sender: str) -> list[str]:
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT o.rcpt, m.raw FROM outbound o JOIN outbound_messages m "
                "ON m.id = o.message_id WHERE m.kind = 'forward'"
            )
        ).all()
    return [str(r) for r, raw in rows if f"Reply-To: {sender}".encode() in bytes(raw)]


def test_a_stranger_writing_to_the_post_address_reaches_the_manager_and_gets_nothing(
    daemon: tuple[helpers.Daemon, smarthost.Sink, sa.Engine, Path],
) -> None:
    d, sink, engine, _ = daemon
    stranger = "stranger@example.org"
    _send(d, stranger, f"{SLUG}@{DOMAIN}")
    # a robot writing to the post address: neither forwarded nor answered (RFC 3834)
    robot = "robot@example.org"
    _send(d, robot, f"{SLUG}@{DOMAIN}", "Auto-Submitted: auto-replied\r\n")
    # a flood from one (forged) sender: forwarded only up to the automatic-answer limit
    flooder = "flooder@example.org"
    for _ in range(12):  # limits.auto_replies_per_address_per_day defaults to 10
        _send(d, flooder, f"{SLUG}@{DOMAIN}")
    helpers.wait_until(lambda: helpers.drained(engine), what="the queues to drain")
    assert _forwards_from(engine, stranger) == [MANAGER]
    forwarded = [m for m in sink.to(MANAGER) if stranger in str(m.msg["Reply-To"])]
    assert len(forwarded) == 1
    assert f"{SLUG}@" in forwarded[0].msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert _forwards_from(engine, robot) == []
    assert len(_forwards_from(engine, flooder)) == 10
    for who in (stranger, robot, flooder):
        assert sink.to(who) == [] and _outbound_to(engine, who) == 0


def test_nothing_was_sent_to_any_forged_sender_and_no_traceback(
    daemon: tuple[helpers.Daemon, smarthost.Sink, sa.Engine, Path],
) -> None:
    d, sink, engine, tmp = daemon
    for case in REFUSED:  # every case once more, in one go, then wait for the worker
        _raw_session(d.smtp[1], case.mail_from, case.rcpt)
    canary = "canary@example.jp"
    _send(d, canary, f"{SLUG}-request@{DOMAIN}")  # answered (help) once all before it is done
    helpers.wait_until(lambda: sink.to(canary), what="the canary's answer")
    helpers.wait_until(lambda: helpers.drained(engine), what="the queues to drain")
    for victim in (
        "victim@example.org",
        "citizen@example.org",
        "staff@example.org",
        "x@example.org",
    ):
        assert sink.to(victim) == [] and _outbound_to(engine, victim) == 0
    with engine.connect() as c:
        froms = {r for (r,) in c.execute(sa.text("SELECT mail_from FROM inbound"))}
    assert "victim@example.org" not in froms  # a refused RCPT stores nothing
    assert d.stop() == 0
    log = "".join(f.read_text() for f in tmp.glob("daemon-*.log"))
    assert "Traceback" not in log
