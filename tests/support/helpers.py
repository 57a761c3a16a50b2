"""Real parts for the daemon tests: the daemon as a
subprocess, databases. Ports come from the OS; waiting is on conditions, never sleeps."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
HAISHIN = Path(sys.executable).with_name("haishin")
DOMAIN = "mail.city.kawasaki.example.jp"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WAIT = 30.0


@dataclass
class Daemon:
    proc: subprocess.Popen[str]
    smtp: tuple[str, int]
    http: tuple[str, int]
    db_url: str
    log: Any = None

    def _close(self) -> None:
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.log is not None:
            self.log.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(WAIT)
        self._close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(WAIT)
        self._close()


def start(
    tmp: Path,
    db_url: str,
    *,
    smarthost: int | None = None,
    config: Path = CONFIG,
    extra: list[str] | None = None,
    stderr: Any = None,
    fd_limit: int | None = None,
) -> Daemon:
    args = [
        str(HAISHIN),
        "serve",
        "--config",
        str(config),
        "--db",
        db_url,
        "--smtp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--maildir",
        str(tmp / "maildir"),
        "--retry-base",
        "0.2",
    ]
    if smarthost:
        args += ["--smarthost", f"127.0.0.1:{smarthost}"]
    env = dict(os.environ, HAISHIN_SECRET="test-secret-0123456789abcdef")
    log = stderr if stderr is not None else open(tmp / f"daemon-{uuid.uuid4().hex[:6]}.log", "w")  # noqa: SIM115

    def limit() -> None:  # the daemon's file limit, soft and hard (inbound/sessions.py)
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    proc = subprocess.Popen(
        args + (extra or []),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        preexec_fn=limit if fd_limit is not None else None,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"smtp=([\d.]+):(\d+) http=([\d.]+):(\d+)", line)
    if not m:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise AssertionError(f"daemon did not start: {line!r}")
    return Daemon(
        proc, (m[1], int(m[2])), (m[3], int(m[4])), db_url, None if stderr is not None else log
    )


@contextmanager
def running(tmp: Path, db_url: str, **start_args: Any) -> Iterator[tuple[Daemon, sa.Engine]]:
    """A daemon (`start`) and an engine on its database; the daemon must stop cleanly."""
    d = start(tmp, db_url, **start_args)
    engine = sa.create_engine(db_url)
    try:
        yield d, engine
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()


def wait_until(check: Any, timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll a condition on the database (the daemon is another process)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def drained(engine: sa.Engine) -> bool:
    """No inbound message waiting and no outbound message due or in flight."""
    with engine.connect() as conn:
        inbound = conn.execute(sa.text("SELECT count(*) FROM inbound WHERE state = 'new'")).scalar()
        outbound = conn.execute(
            sa.text("SELECT count(*) FROM outbound WHERE state IN ('queued', 'sending')")
        ).scalar()
    return inbound == 0 and outbound == 0


def pg_available() -> bool:
    try:
        e = sa.create_engine(PG_ADMIN)
        with e.connect():
            pass
        e.dispose()
        return True
    except Exception:
        return False


@contextmanager
def pg_database() -> Iterator[str]:
    name = f"haishin_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def cp50220(text: str) -> bytes:
    """Encode as phones do: ISO-2022-JP with the CP50220 extensions (①, ㈱ ...)."""
    out = bytearray()
    in_jis = False
    for ch in text:
        b = ch.encode("cp932")
        if len(b) == 1:
            if in_jis:
                out += b"\x1b(B"
                in_jis = False
            out += b
            continue
        s1, s2 = b
        s1 -= 0x70 if s1 < 0xA0 else 0xB0
        s1 <<= 1
        if s2 < 0x9F:
            s1 -= 1
            s2 -= 0x1F if s2 < 0x80 else 0x20
        else:
            s2 -= 0x7E
        if not in_jis:
            out += b"\x1b$B"
            in_jis = True
        out += bytes((s1, s2))
    if in_jis:
        out += b"\x1b(B"
    return bytes(out)


def encoded_word_jis(text: str) -> str:
    import base64

    return "=?ISO-2022-JP?B?" + base64.b64encode(cp50220(text)).decode() + "?="


def phone_reply(sender: str, to: str, subject: str, body: str) -> bytes:
    """A reply as a Japanese phone mail app writes it: ISO-2022-JP, 7bit."""
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {encoded_word_jis(subject)}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@docomo.ne.jp>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="ISO-2022-JP"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
    )
    return head.encode() + cp50220(body).replace(b"\n", b"\r\n") + b"\r\n"


def daemon_log(d: Daemon) -> str:
    """What the daemon wrote to its log (stderr) so far."""
    assert d.log is not None, "the daemon was started with a stderr of the caller's"
    d.log.flush()
    return Path(d.log.name).read_text(errors="replace")


def assert_no_traceback(d: Daemon) -> None:
    """Issue 11 item 9: bad input is a result, never a traceback in the daemon's log."""
    text = daemon_log(d)
    at = text.find("Traceback")
    assert at < 0, f"traceback in the daemon's log:\n{text[max(0, at - 300) : at + 3000]}"
