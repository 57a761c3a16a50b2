"""Consistent backups of the store while the daemon runs, and restore (第4条(2)).

SQLite: the online backup API copies the database as of one read transaction (WAL lets the
daemon keep writing meanwhile). PostgreSQL: `pg_dump --format=custom`, one snapshot by
construction; `pg_restore` brings it back. A backup file is one header line naming its
engine and protection, then the engine's own image, optionally encrypted with a key file.
Files are created owner-only (第4条(3): they hold every subscriber's address).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa

from ..errors import HaishinError
from . import sealed

MAGIC = b"HAISHIN-BACKUP 1"


class BackupError(HaishinError):
    exit_code = 1


@dataclass(frozen=True)
class Header:
    engine: str  # sqlite | postgresql
    protection: str  # plain | sealed

    def line(self) -> bytes:
        return MAGIC + b" " + self.engine.encode() + b" " + self.protection.encode() + b"\n"

    @classmethod
    def read(cls, fh: BinaryIO) -> Header:
        line = fh.readline(200)
        parts = line.rstrip(b"\n").split(b" ")
        if len(parts) != 4 or b" ".join(parts[:2]) != MAGIC:
            raise BackupError("haishin のバックアップファイルではありません")
        engine, protection = parts[2].decode(), parts[3].decode()
        if engine not in ("sqlite", "postgresql") or protection not in ("plain", "sealed"):
            raise BackupError(f"知らない形式のバックアップです（{engine} {protection}）")
        return cls(engine, protection)


def _engine_of(url: str) -> str:
    name = sa.engine.make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"この データベースには対応していません: {name}")
    return name


def _sqlite_path(url: str) -> Path:
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("SQLite のファイルを指定してください")
    return Path(database)


def _libpq(url: str) -> str:
    """The URL as libpq's tools read it (no +driver)."""
    u = sa.engine.make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[BinaryIO]:
    """Create `path` 0600, written fully or not at all."""
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def backup(url: str, dest: Path, key_file: Path | None = None, *, force: bool = False) -> Header:
    """Snapshot the store at `url` into `dest` (never over the store itself; an existing
    `dest` only with `force`)."""
    header = Header(_engine_of(url), "sealed" if key_file else "plain")
    if header.engine == "sqlite":
        live = _sqlite_path(url).resolve()
        own = {live, live.with_name(live.name + "-wal"), live.with_name(live.name + "-shm")}
        if dest.resolve() in own:
            raise BackupError(
                f"バックアップ先 {dest} はデータベースそのものです。別の場所を指定してください"
            )
    if dest.exists() and not force:
        raise BackupError(f"{dest} はすでにあります（上書きするなら --force）")
    if not dest.parent.is_dir():
        raise BackupError(f"バックアップ先のフォルダ {dest.parent} がありません")
    key = sealed.read_key(key_file) if key_file else None
    with tempfile.TemporaryDirectory(prefix="haishin-backup-") as tmp:
        image = Path(tmp) / "image"
        if header.engine == "sqlite":
            source = _sqlite_path(url)
            if not source.exists():
                raise BackupError(f"データベースがありません: {source}")
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            dst = sqlite3.connect(image)
            try:
                src.backup(dst)  # pages=-1: all at once, one consistent read transaction
            finally:
                dst.close()
                src.close()
        else:
            _run(["pg_dump", "--format=custom", "--no-owner", f"--file={image}", _libpq(url)])
        with _private_file(dest) as out, image.open("rb") as fh:
            out.write(header.line())
            if key is None:
                shutil.copyfileobj(fh, out, 1 << 20)
            else:
                sealed.seal(fh, out, key)
    return header


def restore(src: Path, url: str, key_file: Path | None = None) -> Header:
    """Bring the backup `src` into the empty store at `url`."""
    engine = _engine_of(url)
    with src.open("rb") as fh:
        header = Header.read(fh)
        if header.engine != engine:
            raise BackupError(
                f"{header.engine} のバックアップは {engine} には戻せません（同じ種類のデータベースへ）"
            )
        if header.protection == "sealed" and key_file is None:
            raise BackupError("暗号化されたバックアップです。--key-file で鍵を指定してください")
        with tempfile.TemporaryDirectory(prefix="haishin-restore-") as tmp:
            image = Path(tmp) / "image"
            with image.open("wb") as out:
                if header.protection == "sealed":
                    assert key_file is not None
                    sealed.open_sealed(fh, out, sealed.read_key(key_file))
                else:
                    shutil.copyfileobj(fh, out, 1 << 20)
            if engine == "sqlite":
                _restore_sqlite(image, _sqlite_path(url))
            else:
                _require_empty_postgres(url)
                _run(
                    [
                        "pg_restore",
                        "--no-owner",
                        "--exit-on-error",
                        f"--dbname={_libpq(url)}",
                        str(image),
                    ]
                )
    return header


def _restore_sqlite(image: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(f"復元先 {target} はすでにあります。空の場所に復元してください")
    check = sqlite3.connect(image)
    try:
        ok = check.execute("PRAGMA integrity_check").fetchone()
    finally:
        check.close()
    if ok != ("ok",):
        raise BackupError(f"バックアップの中身が壊れています: {ok}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restoring")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, image.open("rb") as fh:
        shutil.copyfileobj(fh, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)


def _require_empty_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(f"復元先のデータベースは空ではありません（テーブル {len(tables)} 個）")


def _run(cmd: list[str]) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(
            f"{cmd[0]} がありません（PostgreSQL のクライアントを入れてください）"
        ) from None
    if done.returncode != 0:
        # the tools' messages name tables and options, never row contents
        raise BackupError(f"{cmd[0]} が失敗しました: {done.stderr.strip()[-500:]}")
