"""Issue 11, item 2: one session's bytes that cannot be stored fail that session only.

- Through the daemon (subprocess, SQLite and PostgreSQL): sessions with invalid MAIL FROM
  or RCPT TO bytes, interleaved with legitimate ones and released at the same moment, are
  refused at that command (5xx), and every legitimate one is stored (250) and answered.
- In process, with the real front end and writer: a row the database refuses inside a
  group commit (a trigger) fails alone — 554 when it can never be stored, 451 when the
  failure is temporary — while every neighbour in the same transaction gets 250.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.directory import Directory
from haishin.inbound import smtp as inbound_smtp
from haishin.inbound.writer import GIVE_UP_AFTER, SpoolWriter
from haishin.registry import load_valid
from haishin.store import open_store
from haishin.tokens import Keyring
from support import helpers
from support.helpers import CONFIG, DOMAIN
from support.smarthost import Sink
from support.statuscodes import Code

SUB = f"gomi-recycle-subscribe@{DOMAIN}"
PAIRS = 15
REFUSED_SENDER = "refused@example.org"

# What hostile clients send, as raw bytes on the wire (smtplib would not send them).
BAD_SESSIONS: list[tuple[bytes, bytes]] = [
    (b"<\xff\xfe@example.org>", SUB.encode()),  # the case of the issue: not UTF-8
    (b"<a\x00b@example.org>", SUB.encode()),  # NUL: PostgreSQL text cannot hold it
    (b"<ctl\x01\x7f@example.org>", SUB.encode()),  # control characters
    (b'<"\xff\xfe"@example.org>', SUB.encode()),  # not UTF-8, quoted (aiosmtpd's parser)
    (b"<" + b"x" * 250 + b"@example.org>", SUB.encode()),  # RFC 5321 §4.5.3.1.3
    (b"<fine@example.org>", b"gomi-recycle-subscribe\xff@" + DOMAIN.encode()),
    (b"<fine@example.org>", b"gomi-recycle-subscribe\x00@" + DOMAIN.encode()),
]


def _reply(f: socket.SocketIO | object) -> int:
    """The code of one (possibly multi-line) reply."""
    while True:
        line = f.readline()  # type: ignore[attr-defined]
        if not line:
            return 0
        if line[3:4] != b"-":
            return int(line[:3])


def _session(port: int, mail_from: bytes, rcpt: bytes, go: threading.Barrier) -> tuple[str, int]:
    """One raw SMTP session; returns the command that was refused (or "DATA") and its
    code. All sessions wait at `go` after EHLO, so their MAIL, RCPT and DATA interleave."""
    with socket.create_connection(("127.0.0.1", port), timeout=helpers.WAIT) as s:
        f = s.makefile("rb")
        assert _reply(f) == 220
        s.sendall(b"EHLO client.example.net\r\n")
        assert _reply(f) == Code.OK
        go.wait()
        for name, line in (
            ("MAIL", b"MAIL FROM:" + mail_from),
            ("RCPT", b"RCPT TO:<" + rcpt + b">"),
        ):
            s.sendall(line + b"\r\n")
            code = _reply(f)
            if code != 250:
                s.sendall(b"QUIT\r\n")
                return name, code
        s.sendall(b"DATA\r\n")
        assert _reply(f) == Code.START_INPUT
        sender = mail_from.strip(b"<>")
        s.sendall(b"From: " + sender + b"\r\nSubject: \r\n\r\n\r\n.\r\n")
        code = _reply(f)
        s.sendall(b"QUIT\r\n")
        return "DATA", code


def test_invalid_envelope_bytes_fail_alone_among_concurrent_sessions(
    tmp_path: Path, db_url: str, sink: Sink
) -> None:
    d = helpers.start(tmp_path, db_url, smarthost=sink.port)
    engine = sa.create_engine(db_url)
    try:
        good = [f"good{i}@example.jp" for i in range(PAIRS)]
        sessions: list[tuple[str, bytes, bytes]] = []
        for i in range(PAIRS):  # interleaved: bad, good, bad, good ...
            bad_from, bad_rcpt = BAD_SESSIONS[i % len(BAD_SESSIONS)]
            sessions.append((f"bad{i}", bad_from, bad_rcpt))
            sessions.append((good[i], f"<{good[i]}>".encode(), SUB.encode()))
        go = threading.Barrier(len(sessions))
        results: dict[str, tuple[str, int]] = {}

        def run(name: str, mail_from: bytes, rcpt: bytes) -> None:
            results[name] = _session(d.smtp[1], mail_from, rcpt, go)

        threads = [threading.Thread(target=run, args=s) for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(helpers.WAIT)
        assert len(results) == len(sessions)
        assert {results[g] for g in good} == {("DATA", Code.OK)}
        for i in range(PAIRS):
            stage, code = results[f"bad{i}"]
            assert stage in ("MAIL", "RCPT") and 500 <= code < 600, (i, stage, code)
        # every legitimate sender is answered, and nobody else
        sink.wait(PAIRS)
        helpers.wait_until(lambda: helpers.drained(engine), what="the queues to drain")
        assert sorted(r for m in sink.messages for r in m.rcpts) == sorted(good)
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM inbound")).scalar() == PAIRS
        assert d.stop() == 0
        log = "".join(f.read_text() for f in tmp_path.glob("daemon-*.log"))
        assert "Traceback" not in log
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()


def _refuse_one_sender(engine: sa.Engine, *, temporary: bool = False) -> None:
    """A trigger that refuses the row from REFUSED_SENDER: a row the database refuses.
    `temporary` (PostgreSQL): as a lock timeout would (SQLSTATE 55P03), not a constraint."""
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            assert not temporary
            c.execute(
                sa.text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON inbound "
                    f"WHEN NEW.mail_from = '{REFUSED_SENDER}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
            return
        state = "55P03" if temporary else "23514"  # lock_not_available / check_violation
        c.execute(
            sa.text(
                "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.mail_from = '{REFUSED_SENDER}' THEN "
                f"RAISE EXCEPTION 'refused by the test' USING ERRCODE = '{state}'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        c.execute(
            sa.text(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON inbound "
                "FOR EACH ROW EXECUTE FUNCTION refuse_one()"
            )
        )


def _group_with_one_refused_row(db_url: str, *, temporary: bool = False) -> dict[str, int]:
    """19 sessions and the refused one, all waiting before the writer starts, so that they
    share one group commit; returns each sender's reply code to DATA."""
    engine = open_store(db_url)
    _refuse_one_sender(engine, temporary=temporary)
    directory = Directory(load_valid(CONFIG), Keyring(b"k" * 32))
    senders = [f"n{i}@example.jp" for i in range(19)]
    senders.insert(7, REFUSED_SENDER)
    codes: dict[str, int] = {}

    async def main() -> None:
        writer = SpoolWriter(engine, lambda: None)
        handler = inbound_smtp.Handler(lambda: directory, writer.store_for("smtp"), "smtp", str)
        make = inbound_smtp.factory(handler, lmtp=False, size_limit=1 << 20, hostname="t", tls=None)
        server = await inbound_smtp.serve(make, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        def client(sender: str) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=helpers.WAIT) as c:
                try:
                    c.sendmail(sender, [SUB], f"From: {sender}\r\n\r\n".encode())
                    codes[sender] = 250
                except smtplib.SMTPDataError as exc:
                    codes[sender] = exc.smtp_code

        loop = asyncio.get_running_loop()
        # a thread per client: the default executor has fewer threads than there are clients
        with ThreadPoolExecutor(max_workers=len(senders)) as pool:
            clients = [loop.run_in_executor(pool, client, s) for s in senders]
            async with asyncio.timeout(helpers.WAIT):
                while writer.backlog < len(senders):  # each session waits after its DATA
                    await asyncio.sleep(0.01)
            task = asyncio.create_task(writer.run())
            await asyncio.gather(*clients)
        task.cancel()
        server.close()
        await server.wait_closed()

    try:
        asyncio.run(main())
        with engine.connect() as c:
            stored = sorted(r for (r,) in c.execute(sa.text("SELECT mail_from FROM inbound")))
        assert stored == sorted(s for s in senders if s != REFUSED_SENDER)
    finally:
        engine.dispose()
    return codes


def test_a_row_the_database_refuses_fails_alone_in_its_group(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="haishin.inbound.writer"):
        codes = _group_with_one_refused_row(db_url)
    assert (
        codes.pop(REFUSED_SENDER) == Code.TRANSACTION_FAILED
    )  # it can never be stored: do not retry
    assert set(codes.values()) == {Code.OK} and len(codes) == 19
    # it was one group of all twenty, and the writer stored each row alone after it failed
    assert "group commit of 20 messages failed" in caplog.text


def test_a_temporary_failure_of_one_row_is_451_for_that_row_only() -> None:
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with helpers.pg_database() as url:
        codes = _group_with_one_refused_row(url, temporary=True)
    assert (
        codes.pop(REFUSED_SENDER) == Code.LOCAL_ERROR
    )  # may pass later: the client keeps it and retries
    assert set(codes.values()) == {Code.OK} and len(codes) == 19


def test_a_failing_database_is_not_tried_once_per_row(sqlite_url: str) -> None:
    """When the database itself fails (here its table is gone, as a disk failure would
    have it), the writer does not try each of the group's rows in turn while every session
    waits: after GIVE_UP_AFTER temporary failures in a row, the rest get 451 at once."""
    engine = open_store(sqlite_url)
    with engine.begin() as c:
        c.execute(sa.text("ALTER TABLE inbound RENAME TO inbound_gone"))
    inserts: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO inbound"):
            inserts.append(statement)

    async def main() -> list[BaseException | int]:
        writer = SpoolWriter(engine, lambda: None)
        store = writer.store_for("smtp")
        futures = [store(b"\r\n", f"n{i}@example.jp", [SUB]) for i in range(20)]
        task = asyncio.create_task(writer.run())
        results = await asyncio.gather(*futures, return_exceptions=True)
        task.cancel()
        return results

    results = asyncio.run(main())
    engine.dispose()
    assert all(
        isinstance(r, sa.exc.OperationalError) for r in results
    )  # Code.LOCAL_ERROR, not Code.TRANSACTION_FAILED
    assert len(inserts) == 1 + GIVE_UP_AFTER  # the group, then two rows alone
