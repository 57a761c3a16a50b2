"""The IMAP state in the store (issue 13 item 4), on SQLite and PostgreSQL: what the
ingester records, the reader lock per mailbox, the import of a former state file, pruning,
and a backup that keeps it all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.store.backup import backup, restore
from haishin.store.engine import open_store
from haishin.store.imap_state import (
    ImapState,
    MailboxBusy,
    ReaderLost,
    StateFileError,
    import_state_file,
    reader_lock,
)
from haishin.store.schema import imap_mailboxes, imap_seen
from support import helpers
from support.imapkit import former_state_file

BOX, OTHER = "a" * 32, "b" * 32


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    e = open_store(db_url)
    yield e
    e.dispose()


def key(n: int) -> str:
    return f"{n:064x}"


def test_state_is_kept_per_mailbox_and_reset_by_a_new_uidvalidity(engine: sa.Engine) -> None:
    state = ImapState(engine, BOX)
    assert state.open_mailbox(4_000_000_000) is False  # first sight; beyond a signed int
    assert state.last_uid == 0
    state.record(5, key(1))
    state.record(7, None)  # a duplicate: the UID moves on, no key
    state.record(6, key(2))  # never backwards
    again = ImapState(engine, BOX)  # a restarted ingester, or another daemon
    assert again.open_mailbox(4_000_000_000) is False
    assert again.last_uid == 7
    assert again.has(key(1)) and again.has(key(2)) and not again.has(key(3))
    assert ImapState(engine, OTHER).open_mailbox(1) is False  # a mailbox of its own
    assert again.open_mailbox(4_000_000_001) is True
    assert again.last_uid == 0
    assert again.has(key(1)), "the seen-set outlives a UIDVALIDITY change"
    again.record(2, key(1))  # offered again in the new mailbox: recorded once
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(imap_seen)).scalar() == 2


def test_a_stale_reader_cannot_move_the_last_uid_of_a_new_uidvalidity(engine: sa.Engine) -> None:
    stale, fresh = ImapState(engine, BOX), ImapState(engine, BOX)
    stale.open_mailbox(1)
    fresh.open_mailbox(2)  # the mailbox was recreated meanwhile
    stale.record(50, key(1))
    assert ImapState(engine, BOX).open_mailbox(2) is False
    with engine.connect() as conn:
        assert conn.execute(sa.select(imap_mailboxes.c.last_uid)).scalar() == 0


def test_prune_forgets_old_keys_only(engine: sa.Engine) -> None:
    state = ImapState(engine, BOX)
    state.open_mailbox(1)
    state.record(1, key(1))
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            imap_seen.insert().values(
                key=key(2), mailbox=BOX, uid=2, stored_at=now - dt.timedelta(days=31)
            )
        )
    assert state.prune(dt.timedelta(days=30)) == 1
    assert state.has(key(1)) and not state.has(key(2))


# -- one reader per mailbox ----------------------------------------------------------------


def test_one_reader_per_mailbox_across_engines(db_url: str) -> None:
    a, b = open_store(db_url), open_store(db_url)
    try:
        with reader_lock(a, BOX) as check:
            check()
            with pytest.raises(MailboxBusy), reader_lock(b, BOX):
                pass
            with reader_lock(b, OTHER):  # another mailbox is free
                pass
        # released with the block
        with reader_lock(b, BOX), pytest.raises(MailboxBusy), reader_lock(a, BOX):
            pass
    finally:
        a.dispose()
        b.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with helpers.pg_database() as url:
        yield url


def test_postgresql_frees_the_lock_when_its_holder_is_gone(pg_url: str) -> None:
    """A reader whose database session ends (killed, its host lost) frees the mailbox at
    once, and finds out before it takes another message. (On SQLite the lock is the
    process's: the SIGKILL tests show it freed.)"""
    a, b = open_store(pg_url), open_store(pg_url)
    try:
        with reader_lock(a, BOX) as check:
            with b.connect() as admin:
                admin.execute(
                    sa.text(
                        # this test's own database only: other tests hold locks too
                        # with a timeout it waits until the backend is gone (PostgreSQL 14+),
                        # so its lock is free when b asks: else a race on a loaded machine
                        "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
            with reader_lock(b, BOX), pytest.raises(ReaderLost):
                check()
        with reader_lock(a, BOX):  # the broken connection did not go back to the pool
            pass
    finally:
        a.dispose()
        b.dispose()


# -- the former state file -----------------------------------------------------------------


def test_a_former_state_file_is_imported_once_and_renamed(
    engine: sa.Engine, tmp_path: Path
) -> None:
    old = tmp_path / "imap-state.sqlite"
    when = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
    seen = [(key(n), BOX, n, when.timestamp()) for n in range(1, 2501)]  # several batches
    former_state_file(old, [(BOX, 77, 2500), (OTHER, 5, 10)], seen)
    # The store already knows OTHER (another daemon's file, imported before): same
    # UIDVALIDITY, further on, which the older file must not take back.
    with engine.begin() as conn:
        conn.execute(
            imap_mailboxes.insert().values(
                mailbox=OTHER, uidvalidity=5, last_uid=40, updated_at=utcnow()
            )
        )

    done = import_state_file(engine, old)

    assert done is not None and (done.mailboxes, done.keys) == (2, 2500)
    assert not old.exists() and done.moved_to == tmp_path / "imap-state.sqlite.migrated"
    state = ImapState(engine, BOX)
    assert state.open_mailbox(77) is False and state.last_uid == 2500
    assert state.has(key(1)) and state.has(key(2500))
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(imap_seen.c.stored_at).where(imap_seen.c.key == key(1))).scalar()
            == when
        )
    other = ImapState(engine, OTHER)
    assert other.open_mailbox(5) is False and other.last_uid == 40

    assert import_state_file(engine, old) is None  # the next start: nothing to import
    # Someone puts the old file back: importing it again changes nothing.
    done.moved_to.rename(old)
    assert import_state_file(engine, old) is not None
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(imap_seen)).scalar() == 2500


def test_an_empty_former_state_file_is_imported_as_nothing(
    engine: sa.Engine, tmp_path: Path
) -> None:
    old = tmp_path / "imap-state.sqlite"
    old.touch()  # created, never written (the daemon stopped before its first session)
    done = import_state_file(engine, old)
    assert done is not None and (done.mailboxes, done.keys) == (0, 0)


def test_an_unreadable_former_state_file_is_left_alone(engine: sa.Engine, tmp_path: Path) -> None:
    old = tmp_path / "imap-state.sqlite"
    old.write_bytes(b"not a database, but a careless copy of something else" * 100)
    with pytest.raises(StateFileError, match="cannot read the old IMAP state file"):
        import_state_file(engine, old)
    assert old.exists()


# -- backups -------------------------------------------------------------------------------


@contextmanager
def _fresh(db_url: str, tmp_path: Path) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'haishin.db'}"
        return
    with helpers.pg_database() as url:
        yield url


def test_backup_and_restore_keep_the_imap_state(
    db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    state = ImapState(engine, BOX)
    state.open_mailbox(3_000_000_000)
    for uid in range(1, 6):
        state.record(uid, key(uid))
    dest = tmp_path / "store.backup"
    backup(db_url, dest)
    with _fresh(db_url, tmp_path) as target:
        restore(dest, target)
        restored = open_store(target)
        try:
            back = ImapState(restored, BOX)
            assert back.open_mailbox(3_000_000_000) is False and back.last_uid == 5
            assert all(back.has(key(uid)) for uid in range(1, 6))
        finally:
            restored.dispose()
