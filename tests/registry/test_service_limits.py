"""service.yaml limits: a span the daemon adds to or takes from the clock is bounded, so a
slip is a finding in Japanese on its line, not an OverflowError in every confirmation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from support.helpers import CONFIG, DOMAIN
from support.inprocess import inprocess

from .conftest import Reg

FIELDS = [
    ("token_ttl_hours: 72", "token_ttl_hours: 99999999", "8760"),
    ("held_post_ttl_hours: 72", "held_post_ttl_hours: 99999999", "8760"),
    # a bounce's scoring took these back from today: every bounce failed in processing
    ("span_days: 7", "span_days: 99999999", "365"),
    ("window_minutes: 60", "window_minutes: 99999999999", "10080"),
]


@pytest.mark.parametrize(("sample", "slip", "bound"), FIELDS)
def test_a_huge_span_is_a_finding(reg: Reg, sample: str, slip: str, bound: str) -> None:
    text = reg.path("service.yaml").read_text("utf-8")
    assert sample in text
    reg.write("service.yaml", text.replace(sample, slip))
    [finding] = reg.findings()
    assert finding.startswith("config/service.yaml:") and f"{bound} 以下" in finding, finding
    assert re.search(r"[ぁ-んァ-ン一-龥]", finding) and "less than" not in finding, finding


def test_the_span_at_its_bound_still_confirms(sqlite_url: str, tmp_path: Path) -> None:
    """The largest span check allows: a subscription is answered, not failed."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    service = config / "service.yaml"
    text = service.read_text("utf-8")
    service.write_text(text.replace("token_ttl_hours: 72", "token_ttl_hours: 8760"), "utf-8")
    rcpt = f"gomi-recycle-subscribe@{DOMAIN}"
    with inprocess(sqlite_url, config) as ip:
        raw = f"From: a@example.jp\r\nTo: {rcpt}\r\nSubject: x\r\n\r\n\r\n".encode()
        spool_id = ip.deliver(raw, "a@example.jp", [rcpt])
        with ip.engine.connect() as conn:
            state = conn.execute(
                sa.text("SELECT state FROM inbound WHERE id = :i"), {"i": spool_id}
            ).scalar_one()
        assert state == "done" and ip.mail("a@example.jp", "")
