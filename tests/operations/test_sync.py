"""`haishin sync` (第8条: registry changes without downtime): a merged pull request
reaches the running daemon; an invalid revision never does, and the 統括管理者 is told."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

import sqlalchemy as sa

from haishin.operations.sync import SyncResult, sync
from haishin.store.engine import open_store
from haishin.store.schema import outbound, outbound_messages
from support import helpers
from support.smarthost import Sink
from support.statuscodes import Code

CONFIG = Path(__file__).resolve().parents[2] / "config"
DOMAIN = "mail.city.kawasaki.example.jp"

NEW_CHANNEL = """slug: kouen-midori
title: 公園・緑化のお知らせ
summary: 公園の催しや緑化の情報をお届けします。
description: |
  公園の催しや、花と緑のまちづくりの情報を配信します。
category: kankyo
frequency: 月1回程度
department: kankyo-genryo
senders:
  - genryo@city.kawasaki.example.jp
registered: 2020-04-01
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=clerk", "-c", "user.email=c@example.jp", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _repos(tmp: Path) -> tuple[Path, Path]:
    """origin (where pull requests are merged) and the server's checkout of it."""
    work = tmp / "work"
    shutil.copytree(CONFIG, work / "config")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "registry")
    origin = tmp / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(origin)], check=True)
    server = tmp / "server"
    subprocess.run(["git", "clone", "-q", str(origin), str(server)], check=True)
    shutil.rmtree(work)
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True)
    return work, server


def _merge(work: Path, path: str, text: str, message: str) -> None:
    (work / path).write_text(text, encoding="utf-8")
    git(work, "add", "-A")
    git(work, "commit", "-qm", message)
    git(work, "push", "-q", "origin", "main")


def _accepts(d: helpers.Daemon, rcpt: str) -> int:
    with smtplib.SMTP(*d.smtp) as client:
        client.ehlo()
        client.mail("citizen@example.jp")
        code, _ = client.rcpt(rcpt)
        client.rset()
    return code


def test_sync_reaches_the_running_daemon_and_refuses_a_bad_revision(
    tmp_path: Path, sqlite_url: str, sink: Sink
) -> None:
    work, server = _repos(tmp_path)
    config = server / "config"
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, config=config)
    engine = open_store(sqlite_url)
    try:
        assert (
            sync(server, config, engine=engine, reload_pid=d.proc.pid).result
            is SyncResult.UP_TO_DATE
        )
        assert _accepts(d, f"kouen-midori-subscribe@{DOMAIN}") == Code.MAILBOX_UNAVAILABLE

        _merge(work, "config/channels/kouen-midori.yaml", NEW_CHANNEL, "新チャネル（附則の登録）")
        done = sync(server, config, engine=engine, reload_pid=d.proc.pid)
        assert done.result is SyncResult.MOVED
        assert git(server, "rev-parse", "HEAD") == done.new
        helpers.wait_until(
            lambda: _accepts(d, f"kouen-midori-subscribe@{DOMAIN}") == Code.OK, what="reload"
        )

        head = git(server, "rev-parse", "HEAD")
        _merge(
            work,
            "config/channels/kouen-midori.yaml",
            NEW_CHANNEL.replace("department: kankyo-genryo", "department: kankyo"),
            "誤り",
        )
        bad = sync(server, config, engine=engine, reload_pid=d.proc.pid)
        assert bad.result is SyncResult.REFUSED and bad.mailed
        assert bad.problems == [
            "config/channels/kouen-midori.yaml:8:13: 情報配信課 'kankyo' は登録されていません。"
            "もしかして 'kankyo-genryo' ですか [unknown-reference]"
        ]
        assert git(server, "rev-parse", "HEAD") == head  # the checkout did not move
        assert _accepts(d, f"kouen-midori-subscribe@{DOMAIN}") == Code.OK  # still served
        # the 統括管理者 is told once, not at every timer run
        assert sync(server, config, engine=engine).mailed is False
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbound.c.rcpt, outbound_messages.c.raw)
                .join(outbound_messages)
                .where(outbound_messages.c.kind == "notice")
            ).all()
        assert [r.rcpt for r in rows] == ["promo-kanri@city.kawasaki.example.jp"]
        msg = BytesParser(policy=policy.default).parsebytes(rows[0].raw)
        assert "登録情報の更新を反映できませんでした" in str(msg["Subject"])
        assert "kouen-midori.yaml:8:13" in msg.get_content()  # type: ignore[attr-defined]
    finally:
        engine.dispose()
        assert d.stop() == 0


def test_cli_exit_status(tmp_path: Path) -> None:
    work, server = _repos(tmp_path)
    run = [
        sys.executable,
        "-m",
        "haishin",
        "sync",
        "--repo",
        str(server),
        "--config",
        str(server / "config"),
    ]
    assert subprocess.run(run, capture_output=True, text=True).stdout.startswith("変更なし")
    _merge(work, "config/service.yaml", "name: [broken\n", "壊れた版")
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 1
    assert "config/service.yaml:2:1: YAML の書き方に誤りがあります" in done.stderr
    assert "Traceback" not in done.stderr
