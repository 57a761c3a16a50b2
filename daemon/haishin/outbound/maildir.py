"""Deliver into a local maildir (no smarthost given): the newcomer reads answers there.

Maildir delivery: write under tmp/, fsync, rename into new/ (atomic), fsync the folder.
"""

from __future__ import annotations

import os
import socket
import time
from itertools import count
from pathlib import Path

_seq = count()


def ensure(root: Path) -> None:
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)


def deliver(root: Path, mail_from: str, rcpt: str, data: bytes, *, sync_dir: bool = True) -> Path:
    name = f"{time.time_ns()}.P{os.getpid()}Q{next(_seq)}.{socket.gethostname()}"
    tmp = root / "tmp" / name
    envelope = f"Return-Path: <{mail_from}>\r\nDelivered-To: {rcpt}\r\n".encode()
    # 0600: the messages hold addresses and live tokens (第4条(3)), whatever the umask
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(envelope + data)
        f.flush()
        os.fsync(f.fileno())
    final = root / "new" / name
    os.rename(tmp, final)
    if sync_dir:
        sync(root)
    return final


def sync(root: Path) -> None:
    """fsync new/ so the renames are durable; once per batch is enough."""
    fd = os.open(root / "new", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
