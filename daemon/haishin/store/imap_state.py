"""The IMAP ingester's state (inbound/imap): how far it got in each mailbox, what it stored.

Per mailbox the UIDVALIDITY and the last UID recorded; per stored message its content key
(the seen-set), kept for a number of days and then pruned by age. Every function here
blocks: the ingester calls them from its own worker thread, never from the event loop.

Several daemons may share one database and be given the same mailbox. One of them reads it
at a time: `reader_lock` is a lock per mailbox that lives exactly as long as its holder,
a session advisory lock on PostgreSQL (the server drops it when the holder's connection
ends, however it ends) and flock(2) on a file beside the database on SQLite (the kernel
drops it when the process ends). The others stand by and take over once it is free. No
lease times and no clocks to agree on: a daemon killed in the middle of a message frees
the mailbox at once, and the next reader judges every message by its key, so the one
message the dead reader was storing is at most offered again, which the spool's unique
key absorbs (store/spool.py). That is the same window a single daemon has across a crash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..clock import utcnow
from ..errors import HaishinError
from .engine import dialect_insert, reading
from .schema import imap_mailboxes, imap_seen

log = logging.getLogger(__name__)

MIGRATED = ".migrated"
"""What an imported state file's name gets, so that it is never imported twice."""


class MailboxBusy(HaishinError):
    """Another ingester reads this mailbox now: stand by."""


class ReaderLost(HaishinError):
    """The connection that holds the reader lock broke: another ingester may read now."""


class StateFileError(HaishinError):
    """An old state file (`--imap-state`) that cannot be read: nothing is ingested until it
    is imported or moved away, since its seen-set is what keeps messages from coming twice."""


class ImapState:
    """One mailbox's state in the store, for the ingester that holds its reader lock."""

    def __init__(self, engine: sa.Engine, mailbox: str) -> None:
        self._engine = engine
        self.mailbox = mailbox
        self.uidvalidity: int | None = None
        self.last_uid = 0

    def open_mailbox(self, uidvalidity: int) -> bool:
        """Read the stored state afresh (another daemon may have read the mailbox since) and
        note its UIDVALIDITY; True when it changed, which resets the last UID to 0."""
        now = utcnow()
        where = imap_mailboxes.c.mailbox == self.mailbox
        with self._engine.begin() as conn:
            conn.execute(
                dialect_insert(conn)(imap_mailboxes)
                .values(mailbox=self.mailbox, uidvalidity=uidvalidity, last_uid=0, updated_at=now)
                .on_conflict_do_nothing(index_elements=["mailbox"])
            )
            stored, last = conn.execute(
                sa.select(imap_mailboxes.c.uidvalidity, imap_mailboxes.c.last_uid).where(where)
            ).one()
            changed = int(stored) != uidvalidity
            if changed:
                conn.execute(
                    imap_mailboxes.update()
                    .where(where)
                    .values(uidvalidity=uidvalidity, last_uid=0, updated_at=now)
                )
                last = 0
        self.uidvalidity, self.last_uid = uidvalidity, int(last)
        return changed

    def has(self, key: str) -> bool:
        with reading(self._engine) as conn:
            found = conn.execute(sa.select(imap_seen.c.key).where(imap_seen.c.key == key)).first()
        return found is not None

    def record(self, uid: int, key: str | None) -> None:
        """The message with this UID is stored (key given) or was a duplicate (key None):
        one transaction, so a crash leaves the state from before or after it."""
        now = utcnow()
        with self._engine.begin() as conn:
            if key is not None:
                conn.execute(
                    dialect_insert(conn)(imap_seen)
                    .values(key=key, mailbox=self.mailbox, uid=uid, stored_at=now)
                    .on_conflict_do_nothing(index_elements=["key"])
                )
            conn.execute(
                imap_mailboxes.update()
                .where(
                    imap_mailboxes.c.mailbox == self.mailbox,
                    # a UID means nothing under another UIDVALIDITY
                    imap_mailboxes.c.uidvalidity == self.uidvalidity,
                    imap_mailboxes.c.last_uid < uid,
                )
                .values(last_uid=uid, updated_at=now)
            )
        self.last_uid = max(self.last_uid, uid)

    def prune(self, older_than: dt.timedelta) -> int:
        """Forget the keys of messages stored longer ago than `older_than` (every mailbox's:
        keys of a mailbox no longer read must go too)."""
        before = utcnow() - older_than
        with self._engine.begin() as conn:
            return conn.execute(imap_seen.delete().where(imap_seen.c.stored_at < before)).rowcount


# -- one reader per mailbox ----------------------------------------------------------------

Check = Callable[[], None]
"""Raises ReaderLost when the reader lock may be gone; call it before taking a message."""


@contextlib.contextmanager
def reader_lock(engine: sa.Engine, mailbox: str) -> Iterator[Check]:
    """Hold the mailbox's reader lock for the block, or raise MailboxBusy at once."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, mailbox) as check:
            yield check
    else:
        with _file_lock(engine, mailbox) as check:
            yield check


def _held() -> None:
    """A lock that cannot be lost while its process lives (flock, or nothing to share)."""


@contextlib.contextmanager
def _advisory_lock(engine: sa.Engine, mailbox: str) -> Iterator[Check]:
    digest = hashlib.sha256(b"haishin imap reader\0" + mailbox.encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)  # advisory locks take a bigint
    # A session lock on a connection of its own, outside any transaction, so that holding
    # it for hours leaves no transaction open.
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        if not conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
            raise MailboxBusy("another ingester reads this mailbox")
    except BaseException:
        conn.close()
        raise

    def check() -> None:
        # The lock is the server session's: while this connection answers, it is ours.
        try:
            conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
            raise ReaderLost(f"the reader lock's connection broke: {cause}") from exc

    try:
        yield check
    finally:
        try:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
        except sa.exc.SQLAlchemyError:
            # The session is gone, and its lock with it; the connection must not go back
            # to the pool.
            conn.invalidate()
        conn.close()


@contextlib.contextmanager
def _file_lock(engine: sa.Engine, mailbox: str) -> Iterator[Check]:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield _held  # a database that no other engine opens: nobody to exclude
        return
    # Beside the database like its -wal and -shm files. flock, not fcntl's record locks:
    # two opens of the file exclude each other even inside one process.
    fd = os.open(f"{database}-imap-{mailbox}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MailboxBusy("another ingester reads this mailbox") from None
        yield _held
    finally:
        os.close(fd)  # which releases the lock


# -- the former state file -----------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    mailboxes: int
    keys: int
    moved_to: Path | None
    """The file's new name; None when it could not be renamed (then it is imported again at
    the next start, which changes nothing)."""


def import_state_file(engine: sa.Engine, path: Path) -> Imported | None:
    """Take the rows of an old `--imap-state` SQLite file into the store, then rename it
    `*.migrated`. None when there is no such file (a new deployment, or imported before).

    Rows merge with what the store holds: a key already there stays, and a mailbox already
    there keeps its own UIDVALIDITY, its last UID raised to the file's when both speak of
    the same UIDVALIDITY. So a second import, or several daemons each importing its own
    file into one shared database, changes nothing more.
    """
    if not path.exists():
        return None
    try:
        mailboxes, seen = _read_state_file(path)
    except sqlite3.DatabaseError as exc:
        raise StateFileError(f"cannot read the old IMAP state file {path}: {exc}") from None
    now = utcnow()
    with engine.begin() as conn:
        insert = dialect_insert(conn)
        for mailbox, uidvalidity, last_uid in mailboxes:
            conn.execute(
                insert(imap_mailboxes)
                .values(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=0, updated_at=now)
                .on_conflict_do_nothing(index_elements=["mailbox"])
            )
            conn.execute(
                imap_mailboxes.update()
                .where(
                    imap_mailboxes.c.mailbox == mailbox,
                    imap_mailboxes.c.uidvalidity == uidvalidity,
                    imap_mailboxes.c.last_uid < last_uid,
                )
                .values(last_uid=last_uid, updated_at=now)
            )
        rows = [
            {
                "key": key,
                "mailbox": mailbox,
                "uid": uid,
                "stored_at": dt.datetime.fromtimestamp(stored_at, dt.UTC),
            }
            for key, mailbox, uid, stored_at in seen
        ]
        for start in range(0, len(rows), 1000):
            conn.execute(
                insert(imap_seen).on_conflict_do_nothing(index_elements=["key"]),
                rows[start : start + 1000],
            )
    target = path.with_name(path.name + MIGRATED)
    try:
        os.replace(path, target)
    except OSError as exc:
        log.warning("imported %s but cannot rename it: %s", path, exc.strerror)
        return Imported(len(mailboxes), len(seen), None)
    return Imported(len(mailboxes), len(seen), target)


def _read_state_file(
    path: Path,
) -> tuple[list[tuple[str, int, int]], list[tuple[str, str, int, float]]]:
    """The rows of the file that the former `ImapState` wrote (its two tables, if there)."""
    # Opened read-write: a WAL left behind by a crash is replayed, not missed.
    db = sqlite3.connect(path)
    try:
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        mailboxes = (
            db.execute("SELECT mailbox, uidvalidity, last_uid FROM imap_mailbox").fetchall()
            if "imap_mailbox" in tables
            else []
        )
        seen = (
            db.execute("SELECT key, mailbox, uid, stored_at FROM imap_seen").fetchall()
            if "imap_seen" in tables
            else []
        )
    finally:
        db.close()
    return mailboxes, seen
