"""A planned stop committed without `notice:` is a draft (issue 15 item 5): valid, so it
can be reviewed, merged and synced, and the daemon gives the notice itself
(operations/announce.py). `haishin check` warns only where staff still have to act: the
start is nearer than `outage_notice_days`, or the stop has begun with no notice on record.
An emergency stop without `report:` is valid too: the daemon reports it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from haishin.registry.model import JST

from .conftest import Reg

OU = "config/outages"

DRAFT = "outages/R9-05-draft.yaml"


def _draft(reg: Reg, start: dt.datetime, end: dt.datetime | None, kind: str = "planned") -> None:
    reg.write(
        DRAFT,
        "id: R9-05-draft\n"
        f"kind: {kind}\n"
        "stopped_by: cloud_admin\n"
        "reason: データベースの更新\n"
        f"start: {start.astimezone(JST).replace(microsecond=0).isoformat(sep=' ')}\n"
        + (
            ""
            if end is None
            else f"end: {end.astimezone(JST).replace(microsecond=0).isoformat(sep=' ')}\n"
        ),
    )


NOW = dt.datetime.now(JST)


def test_a_draft_well_ahead_passes_check_without_a_finding(reg: Reg) -> None:
    _draft(reg, NOW + dt.timedelta(days=30), NOW + dt.timedelta(days=30, hours=3))
    assert reg.findings() == []
    done = subprocess.run(
        [sys.executable, "-m", "haishin", "check", "config"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "停止記録 4 件" in done.stdout


def test_the_sample_draft_is_a_draft_and_passes() -> None:
    """config/outages has a draft to copy: no notice:, and check passes it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "config" / "outages" / "R9-02-db-upgrade.yaml").read_text("utf-8")
    assert "\nnotice:" not in text and "kind: planned" in text
    done = subprocess.run(
        [sys.executable, "-m", "haishin", "check", str(root / "config")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_draft_nearer_than_the_notice_days_is_a_warning(reg: Reg) -> None:
    _draft(reg, NOW + dt.timedelta(days=2), None)
    [finding] = reg.findings()
    assert finding == (
        f"{OU}/R9-05-draft.yaml:5:8: 警告: 停止の開始まで 7 日（service.yaml の outage_notice_days）"
        "を切っています。マージして配信サーバーに反映されしだい、防災CMS管理者 に事前の通知を送ります"
        "（第9条） [notice-short]"
    )
    # a warning: check exits 0, the daemon loads it
    done = subprocess.run(
        [sys.executable, "-m", "haishin", "check", "config"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_notice_days_come_from_service_yaml(reg: Reg) -> None:
    reg.edit("service.yaml", "outage_notice_days: 7", "outage_notice_days: 1")
    _draft(reg, NOW + dt.timedelta(days=2), None)
    assert reg.findings() == []


def test_a_planned_stop_begun_without_a_notice_on_record_is_a_warning(reg: Reg) -> None:
    _draft(reg, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1))
    [finding] = reg.findings()
    assert finding.startswith(f"{OU}/R9-05-draft.yaml:5:8: 警告: 停止が始まっていますが")
    assert "haishin status" in finding and "[notice-not-given]" in finding


def test_a_past_planned_stop_without_notice_is_no_finding(reg: Reg) -> None:
    """Once over, the store holds the record the daemon made (haishin status, the report)."""
    _draft(reg, NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=3) + dt.timedelta(hours=2))
    assert reg.findings() == []


def test_an_emergency_stop_without_report_is_valid(reg: Reg) -> None:
    reg.edit(
        "outages/R8-10-cms-failure.yaml",
        "report:\n  to: cloud_admin\n  at: 2026-10-08 16:30:00+09:00\n",
        "",
    )
    assert reg.findings() == []


def test_the_notice_days_are_bounded(reg: Reg) -> None:
    reg.edit("service.yaml", "outage_notice_days: 7", "outage_notice_days: 0")
    [finding] = reg.findings()
    assert finding.startswith("config/service.yaml:")
    assert "outage_notice_days" in finding and "1" in finding


def test_a_time_at_the_edge_of_the_calendar_is_refused_on_its_line(reg: Reg) -> None:
    """9999-12-31 at -09:00 passed check, then `outage preview` (and the daemon's notice)
    overflowed converting it to Japan time: a traceback after the merge."""
    for end in ("9999-12-31 23:59:59-09:00", "0001-01-01 00:00:00+09:00", "1999-12-31 23:00"):
        reg.write(
            DRAFT,
            "id: R9-05-draft\nkind: planned\nstopped_by: cloud_admin\nreason: データベースの更新\n"
            f"start: 2027-05-01 01:00:00+09:00\nend: {end}\n",
        )
        [finding] = reg.findings()
        assert finding.startswith(f"{OU}/R9-05-draft.yaml:6:6: ") and "2000年から2999年" in finding
        done = subprocess.run(
            [sys.executable, "-m", "haishin", "outage", "preview", "R9-05-draft"],
            capture_output=True,
            text=True,
        )
        assert "Traceback" not in done.stderr and done.returncode != 0, done.stderr
