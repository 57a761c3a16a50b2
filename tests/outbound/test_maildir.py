"""The local maildir outbound: files readable by the owner only (第4条(3))."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from haishin.tokens import (
    Keyring,
)

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


def test_maildir_files_are_owner_only(tmp_path: Path) -> None:
    import os

    from haishin.outbound import maildir

    old = os.umask(0o022)
    try:
        maildir.ensure(tmp_path)
        path = maildir.deliver(tmp_path, "", "a@example.jp", b"To: a@example.jp\r\n\r\nx\r\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
