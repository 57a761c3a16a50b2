"""`haishin backup` / `restore` (第4条(2)): consistent while the store is written, owner-only,
optionally encrypted; a restore into a fresh store holds every row of the original."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.store import confirmations, queue, spool, subscribers
from haishin.store.backup import BackupError, backup, restore
from haishin.store.engine import open_store
from haishin.store.schema import metadata
from support import helpers


def _fill(engine: sa.Engine, n: int = 300) -> None:
    spool.put_many(
        engine,
        [
            (
                f"Subject: {i}\r\n\r\n本文 {i}\r\n".encode(),
                f"s{i}@example.jp",
                ["gomi-recycle-subscribe@x.jp"],
                "smtp",
            )
            for i in range(n)
        ],
        [None] * n,
    )
    with engine.begin() as conn:
        for i in range(n):
            subscribers.activate(
                conn,
                "gomi-recycle",
                f"citizen{i}@example.jp",
                method="mail-reply",
                evidence=f"inbound#{i}",
            )
            confirmations.create(
                conn,
                "kenshin-info",
                f"p{i}@example.jp",
                confirmations.Action.SUBSCRIBE,
                dt.timedelta(hours=72),
                f"test {i}",
            )
        queue.enqueue(
            conn,
            b"Subject: hi\r\n\r\nbody\r\n",
            "",
            [f"r{i}@example.jp" for i in range(n)],
            kind="reply",
        )


def _rows(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            key = [c for c in table.primary_key.columns] or list(table.columns)
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*key))]
    return out


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_restore_holds_every_row(db_url: str, tmp_path: Path, sealed: bool) -> None:
    source = open_store(db_url)
    _fill(source)
    key = None
    if sealed:
        from haishin.store.sealed import new_key

        key = tmp_path / "backup.key"
        new_key(key)
    dest = tmp_path / "store.backup"
    backup(db_url, dest, key)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    if sealed:
        assert b"citizen1@example.jp" not in dest.read_bytes()

    with _fresh(db_url, tmp_path) as target_url:
        restore(dest, target_url, key)
        restored = open_store(target_url)  # migrations: already at head, nothing to do
        assert _rows(restored) == _rows(source)
        restored.dispose()
    source.dispose()


def test_backup_is_consistent_while_the_daemon_writes(sqlite_url: str, tmp_path: Path) -> None:
    """Each write transaction (a spool row and its outbound rows) is in the copy whole or
    not at all, however the backup falls among them."""
    engine = open_store(sqlite_url)
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            with engine.begin() as conn:
                queue.enqueue(
                    conn, b"x", "", [f"w{i}-{j}@example.jp" for j in range(5)], kind="reply"
                )
            i += 1

    def written() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM outbound_messages")).scalar_one())

    t = threading.Thread(target=writer)
    t.start()
    try:
        for n in range(3):
            helpers.wait_until(lambda n=n: written() > 20 * (n + 1), timeout=30, what="writes")
            dest = tmp_path / f"b{n}.backup"
            backup(sqlite_url, dest)
            target = f"sqlite:///{tmp_path / f'r{n}.db'}"
            restore(dest, target)
            copy = sa.create_engine(target)
            with copy.connect() as conn:
                per_message = (
                    conn.execute(sa.text("SELECT count(*) FROM outbound GROUP BY message_id"))
                    .scalars()
                    .all()
                )
            copy.dispose()
            assert per_message and set(per_message) == {5}
    finally:
        stop.set()
        t.join()
        engine.dispose()


def test_refusals(sqlite_url: str, tmp_path: Path) -> None:
    engine = open_store(sqlite_url)
    _fill(engine, 3)
    engine.dispose()
    dest = tmp_path / "b.backup"
    backup(sqlite_url, dest)
    with pytest.raises(BackupError, match="すでにあります"):
        restore(dest, sqlite_url)  # never over a live store
    live = Path(sqlite_url.removeprefix("sqlite:///"))
    for target in (live, live.with_name(live.name + "-wal")):
        with pytest.raises(BackupError, match="データベースそのもの"):
            backup(sqlite_url, target, force=True)  # never over the store itself
    with pytest.raises(BackupError, match="--force"):
        backup(sqlite_url, dest)  # an existing backup is kept unless asked
    backup(sqlite_url, dest, force=True)
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(BackupError, match="haishin のバックアップファイルではありません"):
        restore(tmp_path / "junk", f"sqlite:///{tmp_path / 'x.db'}")
    from haishin.store.sealed import new_key

    key, other = tmp_path / "k1", tmp_path / "k2"
    new_key(key)
    new_key(other)
    sealed = tmp_path / "s.backup"
    backup(sqlite_url, sealed, key)
    with pytest.raises(BackupError, match="--key-file"):
        restore(sealed, f"sqlite:///{tmp_path / 'y.db'}")
    from haishin.store.sealed import SealError

    with pytest.raises(SealError, match="復号できません"):
        restore(sealed, f"sqlite:///{tmp_path / 'y.db'}", other)
    truncated = tmp_path / "t.backup"
    truncated.write_bytes(sealed.read_bytes()[:-10])
    with pytest.raises(SealError, match="復号できません"):
        restore(truncated, f"sqlite:///{tmp_path / 'z.db'}", key)
    assert not (tmp_path / "y.db").exists() and not (tmp_path / "z.db").exists()


def test_cli_round_trip(sqlite_url: str, tmp_path: Path) -> None:
    engine = open_store(sqlite_url)
    _fill(engine, 10)
    before = _rows(engine)
    engine.dispose()
    key = tmp_path / "k"
    run = [sys.executable, "-m", "haishin"]
    assert subprocess.run([*run, "backup-key", str(key)], capture_output=True).returncode == 0
    done = subprocess.run(
        [*run, "backup", str(tmp_path / "b"), "--db", sqlite_url, "--key-file", str(key)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    done = subprocess.run(
        [*run, "restore", str(tmp_path / "b"), "--db", target, "--key-file", str(key)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    restored = sa.create_engine(target)
    after = _rows(restored)
    # the restore is audited in the store it restored into (第4条(3))
    assert [r[3] for r in after.pop("audit_log")] == ["restore"]
    before.pop("audit_log")
    assert after == before
    restored.dispose()
    again = subprocess.run(
        [*run, "restore", str(tmp_path / "b"), "--db", target, "--key-file", str(key)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1
    assert "すでにあります" in again.stderr and "Traceback" not in again.stderr


@contextmanager
def _fresh(db_url: str, tmp_path: Path) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'haishin.db'}"
        return
    with helpers.pg_database() as url:
        yield url
