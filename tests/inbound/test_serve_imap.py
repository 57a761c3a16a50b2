"""`haishin serve --imap`: mail taken from a real Dovecot mailbox goes through the same
spool and router as SMTP; /metrics shows the daemon; a refused reload reaches the
統括管理者 as a mail, not only as a log line."""

from __future__ import annotations

import shutil
import signal
import urllib.request
from pathlib import Path

import pytest

from support import helpers, smarthost
from support.dovecot import PASSWORD, Dovecot

CONFIG = Path(__file__).resolve().parents[2] / "config"
DOMAIN = "mail.city.kawasaki.example.jp"


def _metrics(d: helpers.Daemon) -> str:
    with urllib.request.urlopen(f"http://{d.http[0]}:{d.http[1]}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(r.read().decode())


def test_imap_intake_metrics_and_refused_reload(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not dovecot.running:
        dovecot.start()
    with dovecot.admin() as c:
        c.create_folder("haishin")
    ca = tmp_path / "ca.pem"
    dovecot.ca.cert_pem.write_to_path(str(ca))
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    monkeypatch.setenv("HAISHIN_IMAP_PASSWORD", PASSWORD)
    db = f"sqlite:///{tmp_path / 'haishin.db'}"
    with smarthost.sink() as sink:
        d = helpers.start(
            tmp_path,
            db,
            smarthost=sink.port,
            config=config,
            extra=[
                "--imap",
                dovecot.url("haishin", tls=True),
                "--imap-ca",
                str(ca),
                "--imap-state",
                str(tmp_path / "imap-state.sqlite"),
            ],
        )
        try:
            dovecot.append(
                "haishin",
                (
                    f"Delivered-To: gomi-recycle-subscribe@{DOMAIN}\r\n"
                    "Return-Path: <citizen@example.jp>\r\n"
                    "From: citizen@example.jp\r\n"
                    f"To: gomi-recycle-subscribe@{DOMAIN}\r\n"
                    "Subject: \r\nMessage-ID: <imap-1@example.jp>\r\n\r\n"
                ).encode(),
            )
            [confirmation] = sink.wait(1)
            assert confirmation.rcpts == ["citizen@example.jp"]
            assert "gomi-recycle-confirm+" in str(confirmation.msg["Reply-To"])
            helpers.wait_until(lambda: dovecot.uids("haishin") == [], what="the mailbox to empty")

            text = _metrics(d)
            assert 'haishin_inbound_messages{state="done"} 1.0' in text
            assert "citizen@example.jp" not in text

            (config / "departments.yaml").write_text("departments: [\n", encoding="utf-8")
            d.proc.send_signal(signal.SIGHUP)
            notice = sink.wait(2)[1]
            assert notice.rcpts == ["promo-kanri@city.kawasaki.example.jp"]
            assert "登録情報の更新を反映できませんでした" in str(notice.msg["Subject"])
            assert "departments.yaml:2:1" in notice.msg.get_content()
            assert 'haishin_registry_reloads_total{result="refused"} 1.0' in _metrics(d)
        finally:
            assert d.stop() == 0
