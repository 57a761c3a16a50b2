"""What the IMAP tests share (tests/inbound/): a spool that counts
offers, test mail, fast settings, an ingester in a thread, and an ingester process for the
SIGKILL tests (`python tests/support/imapkit.py URL DB_URL SPOOL CAFILE`)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from haishin.inbound.imap.session import ImapIngester
from haishin.inbound.imap.settings import ImapEndpoint, ImapSettings
from haishin.inbound.imap.wire import message_key
from support.dovecot import PASSWORD, Dovecot

TESTS = Path(__file__).resolve().parents[1]


def worker_env() -> dict[str, str]:
    """The environment of this file run as a worker script: it imports `support` as
    pytest does (tests/ first on the path), and the password from the environment."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "HAISHIN_IMAP_PASSWORD": PASSWORD, "PYTHONPATH": path}


folders = itertools.count(1)
"""Numbers for the tests' folders: each test reads a fresh one."""


class Spool:
    """The test's spool: a real SQLite file with a UNIQUE key, as the daemon's must have.

    Every store() call is counted in `offers` in the same transaction, so a message offered
    twice shows even though the UNIQUE key keeps it stored once. Other processes (the
    SIGKILL test's workers) write to the same file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fail_once: set[str] = set()
        self.after_store: Callable[[str], None] = lambda key: None
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY, key TEXT UNIQUE, raw BLOB)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS offers (key TEXT)")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction, committed on success
                yield db
        finally:
            db.close()

    def store(self, raw: bytes) -> None:
        key = message_key(raw)
        with self._db() as db:
            db.execute("INSERT INTO offers VALUES (?)", (key,))
            db.execute("INSERT OR IGNORE INTO spool (key, raw) VALUES (?, ?)", (key, raw))
        self.after_store(key)
        if key in self.fail_once:
            # Stored and committed, then "the process dies" before the message is marked.
            self.fail_once.discard(key)
            raise RuntimeError("simulated crash after the spool commit")

    @property
    def offers(self) -> Counter[str]:
        with self._db() as db:
            return Counter(k for (k,) in db.execute("SELECT key FROM offers"))

    def keys(self) -> list[str]:
        with self._db() as db:
            return [k for (k,) in db.execute("SELECT key FROM spool ORDER BY id")]

    def has_all(self, messages: list[bytes]) -> Callable[[], bool]:
        wanted = {message_key(m) for m in messages}
        return lambda: wanted <= set(self.keys())


_serial = itertools.count(1)


def mail(subject: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = "citizen@example.net"
    msg["To"] = "gomi-recycle-subscribe@mail.example.jp"
    n = next(_serial)
    msg["Subject"] = subject or f"登録 {n}"
    msg["Message-ID"] = make_msgid(domain="example.net")
    msg.set_content(f"message {n}\n")
    return msg.as_bytes(policy=policy.SMTP)  # CRLF, the form IMAP returns


def settings(dovecot: Dovecot, mailbox: str, **options: object) -> ImapSettings:
    fast: dict[str, object] = {
        "ssl_context": dovecot.client_context(),
        "poll_interval": 0.2,
        "backoff_initial": 0.05,
        "backoff_max": 0.3,
        "standby_interval": 0.1,
        "timeout": 5.0,
    }
    return ImapSettings(
        ImapEndpoint.parse(dovecot.url(mailbox)),
        PASSWORD,
        **{**fast, **options},  # type: ignore[arg-type]
    )


@contextmanager
def running(ingester: ImapIngester) -> Iterator[ImapIngester]:
    """The ingester's worker in a thread, stopped (and checked to stop) on exit."""
    halt = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            ingester.run_blocking(halt)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, name="test-imap")
    thread.start()
    try:
        yield ingester
    finally:
        halt.set()
        thread.join(10)
        assert not thread.is_alive(), "the ingester did not stop within 10 s"
        assert not errors, f"the ingester died: {errors!r}"


def assert_once(spool: Spool, messages: list[bytes]) -> None:
    """Each message in the spool, and offered to it once."""
    keys = [message_key(m) for m in messages]
    assert sorted(spool.keys()) == sorted(keys)
    offers = spool.offers
    assert all(offers[k] == 1 for k in keys), "a message was offered twice"


def former_state_file(
    path: Path, mailboxes: list[tuple[str, int, int]], seen: list[tuple[str, str, int, float]]
) -> None:
    """A file as `haishin serve --imap-state` wrote it before issue 13 (its DDL verbatim)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS imap_mailbox (
            mailbox TEXT PRIMARY KEY, uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS imap_seen (
            key TEXT PRIMARY KEY, mailbox TEXT NOT NULL, uid INTEGER NOT NULL,
            stored_at REAL NOT NULL
        );
        """
    )
    with db:
        db.execute("BEGIN")
        db.executemany("INSERT INTO imap_mailbox VALUES (?, ?, ?)", mailboxes)
        db.executemany("INSERT INTO imap_seen VALUES (?, ?, ?, ?)", seen)
    db.close()


def worker_main(url: str, db_url: str, spool_path: str, cafile: str) -> None:
    """An ingester process, as the daemon runs it (the async entry point, the state in the
    store at `db_url`): the SIGKILL tests start and kill these; SIGTERM stops one cleanly."""
    import logging
    import signal
    import ssl

    from haishin.store.engine import open_store

    # INFO, so that a test can see an ingester stand by or take over
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    settings = ImapSettings.from_url(
        url,
        ssl_context=ssl.create_default_context(cafile=cafile),
        backoff_initial=0.05,
        backoff_max=0.3,
        standby_interval=0.1,
    )
    engine = open_store(db_url)
    ingester = ImapIngester(settings, Spool(Path(spool_path)).store, engine)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await ingester.run(stop)

    try:
        asyncio.run(main())
    finally:
        engine.dispose()


if __name__ == "__main__":
    worker_main(*sys.argv[1:])
