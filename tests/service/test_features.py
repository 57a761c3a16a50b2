"""LMTP, STARTTLS, 451 on storage failure, outbound retries and bounces, registry reload,
the subscribers CLI and `haishin demo --check`: each against real servers."""

from __future__ import annotations

import asyncio
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
from pathlib import Path

import sqlalchemy as sa
import trustme

from haishin.directory import Directory
from haishin.inbound import smtp as inbound_smtp
from haishin.inbound.writer import SpoolWriter
from haishin.registry import load_valid
from haishin.store import open_store
from haishin.tokens import Keyring
from support import helpers, smarthost
from support.helpers import CONFIG, DOMAIN, HAISHIN
from support.smarthost import Received, Sink
from support.statuscodes import Code

SUB = f"gomi-recycle-subscribe@{DOMAIN}"


def test_lmtp_answers_per_recipient(tmp_path: Path, sqlite_url: str, sink: Sink) -> None:
    """RFC 2033 §4.2: after the final dot, one reply per accepted recipient. (smtplib's
    LMTP class reads only one, so the conversation is spoken here line by line.)"""
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, extra=["--lmtp"])
    try:
        with socket.create_connection(d.smtp, timeout=10) as s:
            f = s.makefile("rb")

            def say(line: bytes, replies: int = 1) -> list[bytes]:
                s.sendall(line)
                out = []
                while len(out) < replies:
                    reply = f.readline()
                    if reply[3:4] == b" ":
                        out.append(reply[:3])
                return out

            assert f.readline().startswith(b"220")
            assert say(b"LHLO test\r\n") == [b"250"]
            assert say(b"MAIL FROM:<lmtp@example.jp>\r\n") == [b"250"]
            assert say(f"RCPT TO:<{SUB}>\r\n".encode()) == [b"250"]
            assert say(f"RCPT TO:<nobody@{DOMAIN}>\r\n".encode()) == [b"550"]
            assert say(f"RCPT TO:<kosodate-news-subscribe@{DOMAIN}>\r\n".encode()) == [b"250"]
            assert say(b"DATA\r\n") == [b"354"]
            assert say(b"From: lmtp@example.jp\r\n\r\n.\r\n", replies=2) == [b"250", b"250"]
            assert say(b"QUIT\r\n") == [b"221"]
        assert len(sink.wait(2)) == 2  # one confirmation per channel
    finally:
        d.stop()


def test_starttls(tmp_path: Path, sqlite_url: str) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    d = helpers.start(
        tmp_path,
        sqlite_url,
        extra=["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")],
    )
    try:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with smtplib.SMTP(*d.smtp) as client:
            client.ehlo("localhost")
            assert client.has_extn("starttls")
            client._host = "localhost"  # the name in the certificate
            client.starttls(context=context)
            client.sendmail("tls@example.jp", [SUB], b"\r\n")
        engine = sa.create_engine(sqlite_url)
        helpers.wait_until(lambda: helpers.drained(engine))
        engine.dispose()
    finally:
        d.stop()


def test_storage_failure_answers_451_and_stores_nothing(tmp_path: Path, sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE inbound RENAME TO inbound_gone"))  # the disk "fails"
    directory = Directory(load_valid(CONFIG), Keyring(b"k" * 32))
    replies: list[int] = []

    async def main() -> None:
        writer = SpoolWriter(engine, lambda: None)
        handler = inbound_smtp.Handler(lambda: directory, writer.store_for("smtp"), "smtp", str)
        make = inbound_smtp.factory(handler, lmtp=False, size_limit=1 << 20, hostname="t", tls=None)
        server = await inbound_smtp.serve(make, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        task = asyncio.create_task(writer.run())

        def client() -> None:
            with smtplib.SMTP("127.0.0.1", port) as c:
                try:
                    c.sendmail("x@example.jp", [SUB], b"\r\n")
                    replies.append(Code.OK)
                except smtplib.SMTPDataError as exc:
                    replies.append(exc.smtp_code)

        await asyncio.to_thread(client)
        task.cancel()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert replies == [Code.LOCAL_ERROR]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM inbound_gone")).scalar() == 0
    engine.dispose()


def _outbound(engine: sa.Engine, rcpt: str) -> list[tuple[str, int]]:
    with engine.connect() as c:
        return [
            (s, a)
            for s, a in c.execute(
                sa.text("SELECT state, attempts FROM outbound WHERE rcpt = :r"), {"r": rcpt}
            )
        ]


def test_outbound_retries_4xx_and_records_5xx(tmp_path: Path, sqlite_url: str, sink: Sink) -> None:
    sink.answers["later@example.jp"] = "451 4.3.0 try again"
    sink.answers["gone@example.jp"] = "550 5.1.1 no such user"
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port)
    engine = sa.create_engine(sqlite_url)
    try:
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail("later@example.jp", [SUB], b"From: later@example.jp\r\n\r\n")
            client.sendmail("gone@example.jp", [SUB], b"From: gone@example.jp\r\n\r\n")
        helpers.wait_until(
            lambda: _outbound(engine, "gone@example.jp") == [("bounced", 1)], what="bounce"
        )
        helpers.wait_until(lambda: _outbound(engine, "later@example.jp")[0][1] >= 2, what="retries")
        assert _outbound(engine, "later@example.jp")[0][0] in ("queued", "sending")
        del sink.answers["later@example.jp"]  # the smarthost recovers
        helpers.wait_until(
            lambda: _outbound(engine, "later@example.jp")[0][0] == "sent", what="delivery"
        )
        assert [m.rcpts for m in sink.messages] == [["later@example.jp"]]
    finally:
        d.stop()
        engine.dispose()


def test_smarthost_down_keeps_mail_queued(tmp_path: Path, sqlite_url: str) -> None:
    with smarthost.sink() as gone:
        port = gone.port
    d = helpers.start(tmp_path, sqlite_url, smarthost=port)
    engine = sa.create_engine(sqlite_url)
    try:
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail("wait@example.jp", [SUB], b"From: wait@example.jp\r\n\r\n")
        helpers.wait_until(
            lambda: (_outbound(engine, "wait@example.jp") or [("", 0)])[0][1] >= 2, what="retries"
        )
        assert _outbound(engine, "wait@example.jp")[0][0] in ("queued", "sending")
    finally:
        d.stop()
        engine.dispose()


def _text(m: Received) -> str:
    return str(m.msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def test_registry_reload_on_sighup(tmp_path: Path, sqlite_url: str, sink: Sink) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, config=config)
    try:
        channel = config / "channels" / "gomi-recycle.yaml"
        # 第3条5: the 統括管理者 pauses the channel
        channel.write_text(
            channel.read_text(encoding="utf-8")
            + "paused:\n  since: 2020-01-01\n  by: general_manager\n  reason: 点検のため\n",
            encoding="utf-8",
        )
        d.proc.send_signal(signal.SIGHUP)
        engine = sa.create_engine(sqlite_url)
        helpers.wait_until(lambda: "reloaded" in _log(tmp_path), what="reload")
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail("hup@example.jp", [SUB], b"From: hup@example.jp\r\n\r\n")
        # a paused channel still takes subscriptions; its confirmation request says so
        assert "一時停止" in _text(sink.wait(1)[0])
        # a registry that does not validate is refused; the last good one stays
        (config / "service.yaml").write_text("name: [broken\n", encoding="utf-8")
        d.proc.send_signal(signal.SIGHUP)
        helpers.wait_until(lambda: "reload refused" in _log(tmp_path), what="refusal")
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail("hup2@example.jp", [SUB], b"From: hup2@example.jp\r\n\r\n")
        sink.wait(3)
        assert "一時停止" in _text(sink.to("hup2@example.jp")[0])
        # and the 統括管理者 is told why the reload was refused
        [notice] = sink.to("promo-kanri@city.kawasaki.example.jp")
        assert "登録情報の更新を反映できませんでした" in str(notice.msg["Subject"])
        engine.dispose()
    finally:
        assert d.stop() == 0


def _log(tmp: Path) -> str:
    return "".join(p.read_text() for p in tmp.glob("daemon-*.log"))


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"HAISHIN_SECRET": "test-secret-0123456789abcdef", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(HAISHIN), *args], capture_output=True, text=True, input=stdin, env=env, timeout=60
    )


def test_subscribers_cli(tmp_path: Path, db_url: str) -> None:
    addresses = tmp_path / "import.txt"
    addresses.write_text(
        "# 旧システムからの移行\na@example.jp\nabc..def@docomo.ne.jp\nnot an address\n",
        encoding="utf-8",
    )
    r = _cli(
        "subscribers",
        "import",
        "gomi-recycle",
        str(addresses),
        "--db",
        db_url,
        "--config",
        str(CONFIG),
    )
    # a malformed line needs the staff member to act: exit 1, the line named (issue 15 item 8)
    assert r.returncode == 1, r.stderr
    assert "確認メール 2 件" in r.stdout and "形式の誤り 1" in r.stdout, r.stdout
    assert "import.txt:4: メールアドレスの形式が正しくありません" in r.stderr, r.stderr
    r = _cli("subscribers", "count", "gomi-recycle", "--db", db_url)
    assert "pending\t2" in r.stdout and "active\t0" in r.stdout  # import never activates
    engine = sa.create_engine(db_url)
    with engine.connect() as c:
        assert (
            c.execute(sa.text("SELECT count(*) FROM outbound WHERE state='queued'")).scalar() == 2
        )
    engine.dispose()
    r = _cli("subscribers", "export", "gomi-recycle", "--db", db_url)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("address,status,created_at,confirmed_at,consent_method")
    assert any(line.startswith("abc..def@docomo.ne.jp,pending") for line in lines)
    r = _cli("subscribers", "list", "gomi-recycle", "--db", db_url)
    assert "a@example.jp\tpending" in r.stdout
    r = _cli("subscribers", "remove", "gomi-recycle", "a@example.jp", "--db", db_url)
    assert r.returncode == 0
    r = _cli("subscribers", "remove", "gomi-recycle", "nobody@example.jp", "--db", db_url)
    assert r.returncode != 0
    assert "disabled\t1" in _cli("subscribers", "count", "gomi-recycle", "--db", db_url).stdout


def test_demo_check(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(HAISHIN), "demo", "--check", "--config", str(CONFIG)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "登録が完了しました" in r.stdout


def test_imap_store_hook_feeds_the_same_spool(tmp_path: Path, sqlite_url: str, sink: Sink) -> None:
    """The IMAP ingester calls `Daemon.imap_store(raw)` from its own thread: the message is
    committed to the spool (once, even if offered twice) and processed like SMTP mail."""
    import threading

    from haishin.outbound.sender import SendSettings
    from haishin.service import Daemon, Settings
    from haishin.tokens import Keyring

    settings = Settings(
        config=CONFIG, db_url=sqlite_url, smtp=("127.0.0.1", 0), http=("127.0.0.1", 0),
        keyring=Keyring(b"k" * 32), send=SendSettings(smarthost=("127.0.0.1", sink.port), maildir=tmp_path / "md"),
    )  # fmt: skip
    ready = threading.Event()
    daemon = Daemon(settings, ready=lambda bound: ready.set(), signals=False)
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_until_complete, args=(daemon.run(),))
    t.start()
    try:
        assert ready.wait(30)
        raw = (
            f"Return-Path: <imap@example.jp>\r\nDelivered-To: {SUB}\r\nFrom: imap@example.jp\r\n"
            "Subject: \r\n\r\n"
        ).encode()
        daemon.imap_store(raw)
        daemon.imap_store(raw)  # offered again (a crash before the server was told)
        assert sink.wait(1)[0].rcpts == ["imap@example.jp"]
        engine = sa.create_engine(sqlite_url)
        helpers.wait_until(lambda: helpers.drained(engine))
        with engine.connect() as c:
            assert (
                c.execute(sa.text("SELECT count(*) FROM inbound WHERE source='imap'")).scalar() == 1
            )
        engine.dispose()
        assert len(sink.messages) == 1
    finally:
        loop.call_soon_threadsafe(daemon.stop)
        t.join(30)
        loop.close()
