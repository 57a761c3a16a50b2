"""第4条(3): administrative actions on the registration data are in the audit log —
who, what, when — with addresses only as keyed hashes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from haishin.store import subscribers
from haishin.store.audit import entries
from haishin.store.engine import open_store


def _haishin(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HAISHIN_SECRET="test-secret-0123456789abcdef", SUDO_USER="clerk")
    return subprocess.run(
        [sys.executable, "-m", "haishin", *args], capture_output=True, text=True, env=env
    )


def test_admin_actions_are_audited(sqlite_url: str, tmp_path: Path) -> None:
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        subscribers.activate(conn, "gomi-recycle", "victim@example.jp", method="t", evidence="t")
    assert (
        _haishin(
            "subscribers",
            "export",
            "gomi-recycle",
            "--db",
            sqlite_url,
            "-o",
            str(tmp_path / "x.csv"),
        ).returncode
        == 0
    )
    assert (
        _haishin(
            "subscribers", "remove", "gomi-recycle", "victim@example.jp", "--db", sqlite_url
        ).returncode
        == 0
    )
    assert _haishin("backup", str(tmp_path / "b"), "--db", sqlite_url).returncode == 0

    log = list(entries(engine))
    assert [(e.action, e.target) for e in log] == [
        ("subscribers.export", "gomi-recycle"),
        ("subscribers.remove", "gomi-recycle"),
        ("backup", str(tmp_path / "b")),
    ]
    assert all(e.actor.startswith("clerk (sudo ") for e in log)
    assert log[1].detail is not None and log[1].detail.startswith("addr:")
    assert "victim@example.jp" not in " ".join(str(e) for e in log)

    listed = _haishin("audit", "--db", sqlite_url)
    assert listed.returncode == 0
    assert "subscribers.remove\tgomi-recycle\taddr:" in listed.stdout
    engine.dispose()
