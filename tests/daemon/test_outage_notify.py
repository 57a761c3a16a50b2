"""`haishin outage notify` (第9条): the notice or report is queued for the other party and
recorded in the outage file, so that `haishin check` sees the rule kept."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.errors import RegistryEditError
from haishin.operations.outages import notify
from haishin.registry import check
from haishin.registry.model import JST
from haishin.store.engine import open_store
from haishin.store.schema import outbound, outbound_messages

CONFIG = Path(__file__).resolve().parents[2] / "config"

PLANNED = """id: R9-01-maintenance
kind: planned
stopped_by: cloud_admin
reason: データベースの更新
start: 2027-01-10 01:00:00+09:00
end: 2027-01-10 03:00:00+09:00
"""

EMERGENCY = """# 防災CMS の障害
id: R8-11-cms
kind: emergency
stopped_by: cms_admin
reason: 防災CMS の緊急保守
start: 2026-11-20 09:00:00+09:00
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(CONFIG, tmp_path / "config")
    (tmp_path / "config" / "outages" / "R9-01-maintenance.yaml").write_text(PLANNED, "utf-8")
    (tmp_path / "config" / "outages" / "R8-11-cms.yaml").write_text(EMERGENCY, "utf-8")
    return tmp_path / "config"


def _queued(engine: sa.Engine) -> list[tuple[str, EmailMessage]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbound.c.rcpt, outbound_messages.c.raw).join(outbound_messages)
        ).all()
    out = []
    for rcpt, raw in rows:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        out.append((rcpt, msg))
    return out


def test_planned_notice_before_the_stop(config: Path, tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'db'}")
    before = (config / "outages" / "R9-01-maintenance.yaml").read_text("utf-8")
    sent = notify(config, "R9-01-maintenance", engine, dt.datetime(2026, 12, 20, 10, 0, tzinfo=JST))
    assert sent.kind == "notice" and sent.to.value == "cms_admin"
    after = (config / "outages" / "R9-01-maintenance.yaml").read_text("utf-8")
    assert after == before + (
        "# 第9条2・4: 事前の通知\nnotice:\n  to: cms_admin\n  at: 2026-12-20 10:00:00+09:00\n"
    )
    assert [str(p) for p in check(config)[1]] == []
    [(rcpt, msg)] = _queued(engine)
    assert rcpt == "bosai-cms@city.kawasaki.example.jp"
    assert msg["Subject"].startswith("【事前通知】川崎市電子メール配信サービスの計画停止")
    assert msg["Reply-To"] == "promo-cloud@city.kawasaki.example.jp"
    body = msg.get_content()
    assert "1 停止の期間　2027年1月10日 01:00 〜 2027年1月10日 03:00" in body
    assert "運営要領第9条" in body
    with pytest.raises(RegistryEditError, match="済んでいます"):
        notify(config, "R9-01-maintenance", engine, dt.datetime(2026, 12, 21, tzinfo=JST))
    assert len(_queued(engine)) == 1


def test_emergency_report_after_the_stop(config: Path, tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'db'}")
    with pytest.raises(RegistryEditError, match="停止の後"):
        notify(config, "R8-11-cms", engine, dt.datetime(2026, 11, 20, 8, 0, tzinfo=JST))
    sent = notify(config, "R8-11-cms", engine, dt.datetime(2026, 11, 20, 9, 40, tzinfo=JST))
    assert (sent.kind, sent.to.value) == ("report", "cloud_admin")
    [(rcpt, msg)] = _queued(engine)
    assert rcpt == "promo-cloud@city.kawasaki.example.jp"
    assert msg["Subject"].startswith("【停止報告】")
    assert "2 停止の理由　防災CMS の緊急保守" in msg.get_content()
    assert "report:\n  to: cloud_admin\n  at: 2026-11-20 09:40:00+09:00\n" in (
        config / "outages" / "R8-11-cms.yaml"
    ).read_text("utf-8")


def test_a_late_notice_is_refused_and_nothing_is_mailed(config: Path, tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'db'}")
    with pytest.raises(RegistryEditError, match="事前の通知はできません"):
        notify(config, "R9-01-maintenance", engine, dt.datetime(2027, 1, 10, 2, 0, tzinfo=JST))
    assert _queued(engine) == []
    assert "notice" not in (config / "outages" / "R9-01-maintenance.yaml").read_text("utf-8")


def test_cli(config: Path, tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'db'}").dispose()  # the daemon's store exists
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "haishin",
            "outage",
            "notify",
            "R8-11-cms",
            "--config",
            str(config),
            "--db",
            f"sqlite:///{tmp_path / 'db'}",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "停止報告を クラウドサービス管理者 宛てに送信待ちにし" in done.stdout
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "haishin",
            "outage",
            "notify",
            "R8-11-cms",
            "--config",
            str(config),
            "--db",
            f"sqlite:///{tmp_path / 'db'}",
        ],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "済んでいます" in again.stderr
