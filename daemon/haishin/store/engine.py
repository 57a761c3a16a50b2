"""Open the database and bring its schema up to date (Alembic, run at start).

SQLite in WAL mode is the embedded default; PostgreSQL is used when the URL says so
(design.md, Storage). Every write transaction on SQLite starts with BEGIN IMMEDIATE, so two
writers queue on the lock instead of failing halfway through an upgrade from read to write.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite

MIGRATIONS = Path(__file__).with_name("migrations")

SQLITE_BUSY_MS = 30_000
"""How long a SQLite writer waits for the lock before failing (then: 451, retry later)."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling is turned off; we emit BEGIN ourselves.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns, so a 250 survives a power cut, not only
    # a crash of the process (RFC 5321 §4.1.1.4).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


READ = {"haishin_read": True}
"""Execution options of a read-only connection: `engine.connect().execution_options(**READ)`."""


def reading(engine: sa.Engine) -> sa.Connection:
    """A connection for reads only (no write lock taken on SQLite)."""
    return engine.connect().execution_options(**READ)


def dialect_insert(conn: sa.Connection) -> type[sqlite.Insert] | type[postgresql.Insert]:
    """The engine's own INSERT, which has ON CONFLICT (both engines speak it): an insert
    that two daemons may race on becomes a no-op or an update instead of an error."""
    return postgresql.Insert if conn.dialect.name == "postgresql" else sqlite.Insert


GAVE_WAY = frozenset({"40001", "40P01"})
"""PostgreSQL's SQLSTATEs for a transaction it rolled back in favour of another one:
serialization_failure and deadlock_detected. Nothing of it was committed, and the same
work done again succeeds (PostgreSQL manual, 13.6 and Appendix A)."""


def gave_way(exc: BaseException) -> bool:
    """Whether `exc` is the database aborting this transaction for another's sake: a
    retry, not a failure (no traceback in the log)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in GAVE_WAY


def _sqlite_listeners(engine: sa.Engine) -> None:
    # SQLite has one writer at a time. Writers of this process queue on a lock here rather
    # than in SQLite's busy handler, which sleeps in steps of up to 100 ms; readers take a
    # deferred transaction, which WAL lets run beside the writer.
    lock = threading.Lock()

    @sa.event.listens_for(engine, "begin")
    def begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("haishin_read"):
            conn.exec_driver_sql("BEGIN")
            return
        lock.acquire()
        conn.info["haishin_locked"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            conn.info.pop("haishin_locked", None)
            lock.release()
            raise

    def release(conn: sa.Connection) -> None:
        if conn.info.pop("haishin_locked", False):
            lock.release()

    sa.event.listen(engine, "commit", release)
    sa.event.listen(engine, "rollback", release)


def _private_sqlite_file(url: str) -> None:
    """Create the database file owner-only before SQLite does (第4条(3): it holds every
    subscriber's address); SQLite gives its -wal and -shm files the same mode."""
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def create_engine(url: str, *, pool_size: int = 8) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL, FULL sync and one writer at a time."""
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        engine = sa.create_engine(url, pool_size=pool_size, max_overflow=4, hide_parameters=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        _sqlite_listeners(engine)
        return engine
    # hide_parameters: an error message must not carry a subscriber's address into a log
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=4, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE = 1.0
"""Seconds a pooled PostgreSQL connection may rest before it is tried on checkout."""


def _ping_when_idle(engine: sa.Engine) -> None:
    """SQLAlchemy's pool_pre_ping, for connections that rested: a ping is a round trip,
    and the spool's group commit and the worker's batches check a connection out several
    hundred times a second, each back within milliseconds (bench/inbound_subscribe.py: a
    third of the group commit's round trips). One that rested is tried as pre_ping does
    (a server restarted meanwhile: the pool opens a new one); if the server goes away in
    the second after a use, that statement fails as any other would (451, the batch
    retried)."""

    @sa.event.listens_for(engine, "checkin")
    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["haishin_rested_from"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        rested_from = record.info.pop("haishin_rested_from", None)
        if rested_from is not None and time.monotonic() - rested_from < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # the pool drops this one and opens another
            raise sa.exc.DisconnectionError("the connection is gone") from exc


def alembic_config(engine: sa.Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: sa.Engine) -> None:
    """Upgrade the schema to the newest revision; a no-op when it is current."""
    command.upgrade(alembic_config(engine), "head")


def open_store(url: str) -> sa.Engine:
    engine = create_engine(url)
    migrate(engine)
    return engine
