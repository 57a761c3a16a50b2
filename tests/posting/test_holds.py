"""Issue 6, "Done when" 2: pause, outage, scheduled sending, withdrawal and expiry, each
with its outcome asserted (held, then delivered complete; or never delivered). Also the
`manager` and `authenticated` approval modes and a correction (第5条(1)).

Each test runs `haishin serve` as a subprocess (SQLite file and PostgreSQL) against a
copy of the registry that it edits and reloads with SIGHUP, as the 統括管理者's merged
pull request would.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.context import Context
from haishin.directory import Directory
from haishin.posting.release import ReleaseSettings, release_due
from haishin.registry import load_valid
from haishin.tokens import Keyring
from support import helpers, smarthost
from support import posting as p
from support.helpers import CONFIG, DOMAIN, HAISHIN
from support.smarthost import Sink

SECRET = "test-secret-0123456789abcdef"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


@pytest.fixture
def daemon(
    tmp_path: Path, db_url: str, sink: Sink, config: Path
) -> Iterator[tuple[helpers.Daemon, sa.Engine]]:
    extra = ["--archive", str(tmp_path / "archive"), "--release-poll", "0.1"]
    with helpers.running(tmp_path, db_url, smarthost=sink.port, config=config, extra=extra) as de:
        yield de


def reload(d: helpers.Daemon, engine: sa.Engine) -> None:
    d.proc.send_signal(signal.SIGHUP)


def approve_on_web(d: helpers.Daemon, request: smarthost.Received) -> None:
    url = next(w for w in p.body(request).split() if "/post/" in w)
    code, page = p.http(d, url, b"action=approve")
    assert code == 200 and "承認しました" in page, page


def held_post(
    d: helpers.Daemon,
    sink: Sink,
    engine: sa.Engine,
    subject: str,
    text: str = "本文です。\n",
    n: int = 1,
    **kw: str,
) -> tuple[int, smarthost.Received]:
    """Post and wait for the approval request (the n-th to the sender); returns the id."""
    sender = kw.get("sender", p.SENDER)
    slug = kw.get("slug", p.SLUG)
    p.send(d, p.post_message(subject, text, sender=sender, slug=slug), sender=sender)
    request = p.wait_mail(sink, kw.get("approver", sender), "投稿の確認", count=n)
    row = p.post_row(engine)
    assert row is not None and row["state"] == "held"
    return int(str(row["id"])), request


def cli(*args: str, config: Path, db: str) -> subprocess.CompletedProcess[str]:
    reads = args[0] in ("list", "show")  # the others also need the registry and the key
    return subprocess.run(
        [str(HAISHIN), "held", *args, "--db", db, *([] if reads else ["--config", str(config)])],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HAISHIN_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
    )


def sent_complete(engine: sa.Engine, sink: Sink, post_id: int, slug: str = p.SLUG) -> None:
    helpers.wait_until(lambda: p.state(engine, post_id) == "sent", what="post sent")
    helpers.wait_until(lambda: helpers.drained(engine), what="queue drained")
    rcpts = sorted(r for m in p.delivered(sink, slug) for r in m.rcpts)
    assert rcpts == sorted(p.ACTIVE)


def test_pause_holds_an_approved_post_until_the_pause_ends(
    daemon: tuple[helpers.Daemon, sa.Engine], sink: Sink, config: Path
) -> None:
    d, engine = daemon
    slug, sender = "sports-event", "sports@city.kawasaki.example.jp"  # paused (第3条5)
    p.populate(engine, slug)
    post_id, request = held_post(d, sink, engine, "大会のお知らせ", slug=slug, sender=sender)
    approve_on_web(d, request)
    helpers.wait_until(
        lambda: "paused" in str((p.post_row(engine, post_id) or {}).get("note")),
        what="the hold recorded",
    )
    assert p.state(engine, post_id) == "approved"
    assert not p.delivered(sink, slug)

    channel = config / "channels" / f"{slug}.yaml"
    text = channel.read_text()
    channel.write_text(text[: text.index("paused:")])  # the 統括管理者 lifts the pause
    reload(d, engine)
    sent_complete(engine, sink, post_id, slug)


def test_outage_holds_and_its_end_releases(
    daemon: tuple[helpers.Daemon, sa.Engine], sink: Sink, config: Path
) -> None:
    d, engine = daemon
    p.populate(engine)
    # the approval request comes before the stop: during it, it would wait too (issue 11)
    post_id, request = held_post(d, sink, engine, "お知らせ")
    outage = config / "outages" / "test.yaml"
    outage.write_text(
        "id: test\nkind: emergency\nstopped_by: cloud_admin\nreason: テスト\n"
        "start: 2026-01-01 00:00:00+09:00\n"
    )
    reload(d, engine)
    # the reload is seen when the sender starts holding mail for the outage
    helpers.wait_until(
        lambda: any("outage in force" in f.read_text() for f in config.parent.glob("daemon-*.log")),
        what="the outage seen",
    )
    approve_on_web(d, request)
    helpers.wait_until(
        lambda: "outage test" in str((p.post_row(engine, post_id) or {}).get("note")),
        what="the hold recorded",
    )
    assert not p.delivered(sink)
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    # ended, with the report 第9条4 ただし書 asks after an emergency stop
    outage.write_text(
        outage.read_text()
        + f"end: {end.isoformat()}\nreport:\n  to: cms_admin\n  at: {end.isoformat()}\n"
    )
    reload(d, engine)
    sent_complete(engine, sink, post_id)


def test_scheduled_post_waits_for_its_time_and_the_approval_can_change_it(
    daemon: tuple[helpers.Daemon, sa.Engine], sink: Sink, config: Path
) -> None:
    d, engine = daemon
    p.populate(engine)
    post_id, request = held_post(
        d, sink, engine, "予定", "配信日時: 2030-01-01 09:00\n\n本文です。\n"
    )
    assert "2030年01月01日 09:00" in p.body(request)
    approve_on_web(d, request)
    helpers.wait_until(lambda: p.state(engine, post_id) == "scheduled", what="scheduled")
    row = p.post_row(engine, post_id)
    assert row is not None and "配信日時" not in str(row["text"])
    # the 情報管理者 moves it to a few seconds from now
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    done = cli("approve", str(post_id), "--send-at", at.isoformat(), config=config, db=d.db_url)
    assert done.returncode == 0, done.stderr
    helpers.wait_until(
        lambda: dt.datetime.now(dt.UTC) >= at or p.delivered(sink), what="the send time"
    )
    assert dt.datetime.now(dt.UTC) >= at, "delivered before its time"
    sent_complete(engine, sink, post_id)
    assert all("配信日時" not in p.body(m) for m in p.delivered(sink))


def test_withdrawn_by_mail_and_cli_never_delivered(
    daemon: tuple[helpers.Daemon, sa.Engine], sink: Sink, config: Path
) -> None:
    d, engine = daemon
    p.populate(engine)
    # by mail: the sender replies 取消 to the approval request
    first, request = held_post(d, sink, engine, "取り消す投稿")
    reply_to = str(request.msg["Reply-To"])
    raw = helpers.phone_reply(p.SENDER, reply_to, "RE: 取消", "取消\n> 元のメール")
    p.send_to(d, reply_to, raw)
    p.wait_mail(sink, p.SENDER, "取り消されました")
    assert p.state(engine, first) == "withdrawn"
    # the request's button no longer works
    url = next(w for w in p.body(request).split() if "/post/" in w)
    assert p.http(d, url, b"action=approve")[0] == 400
    # by the CLI, after approval but before its time
    second, request2 = held_post(
        d, sink, engine, "予定の投稿", "配信日時: 2030-01-01 09:00\n\n本文\n", n=2
    )
    approve_on_web(d, request2)
    helpers.wait_until(lambda: p.state(engine, second) == "scheduled", what="scheduled")
    done = cli("withdraw", str(second), config=config, db=d.db_url)
    assert done.returncode == 0, done.stderr
    assert p.state(engine, second) == "withdrawn"
    again = cli("approve", str(second), config=config, db=d.db_url)
    assert again.returncode != 0 and "no longer held" in again.stderr
    listed = cli("list", "--all", config=config, db=d.db_url)
    assert f"{first}\t{p.SLUG}\twithdrawn" in listed.stdout
    helpers.wait_until(lambda: len(p.to(sink, p.SENDER, "取り消されました")) == 2, what="notice")
    # and rejected by the CLI, with the reason told to the sender
    third, _ = held_post(d, sink, engine, "却下される投稿", n=3)
    shown = cli("show", str(third), config=config, db=d.db_url)
    assert "state: held" in shown.stdout and "却下される投稿" in shown.stdout
    assert "findings: [" in shown.stdout
    done = cli("reject", str(third), "--reason", "内容の確認が必要です", config=config, db=d.db_url)
    assert done.returncode == 0, done.stderr
    rejected = p.wait_mail(sink, p.SENDER, "承認されませんでした")
    assert "内容の確認が必要です" in p.body(rejected)
    assert p.state(engine, third) == "rejected"
    with engine.connect() as c:
        actions = [a for (a,) in c.execute(sa.text("SELECT action FROM audit_log ORDER BY id"))]
    assert [a for a in actions if a.startswith("held.")] == [
        "held.withdraw",
        "held.approve",
        "held.reject",
    ]
    helpers.wait_until(lambda: helpers.drained(engine), what="drain")
    assert not p.delivered(sink)


def test_held_post_expires_with_a_notice(
    daemon: tuple[helpers.Daemon, sa.Engine], sink: Sink, config: Path
) -> None:
    d, engine = daemon
    p.populate(engine)
    post_id, request = held_post(d, sink, engine, "確認されない投稿")
    registry = load_valid(config)
    ctx = Context(
        Directory(registry, Keyring(SECRET.encode())), Keyring(SECRET.encode()), "http://127.0.0.1/"
    )
    ttl = registry.service.value.limits.held_post_ttl_hours  # type: ignore[union-attr]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=ttl, minutes=1)
    release_due(engine, ctx, ReleaseSettings(archive_dir=None), now=later)
    assert p.state(engine, post_id) == "expired"
    notice = p.wait_mail(sink, p.SENDER, "破棄")
    assert "確認されない投稿" in str(notice.msg["Subject"])
    approve_on_web_code = p.http(
        d, next(w for w in p.body(request).split() if "/post/" in w), b"action=approve"
    )[0]
    assert approve_on_web_code == 400
    helpers.wait_until(lambda: helpers.drained(engine), what="drain")
    assert not p.delivered(sink)


def test_manager_mode_authenticated_mode_and_a_correction(
    daemon: tuple[helpers.Daemon, sa.Engine], sink: Sink, config: Path
) -> None:
    d, engine = daemon
    # manager: kosodate-news's posts are approved by the department's 情報管理者
    slug, sender, manager = (
        "kosodate-news",
        "kosodate@city.kawasaki.example.jp",
        "kosodate-kacho@city.kawasaki.example.jp",
    )
    p.populate(engine, slug)
    post_id, request = held_post(
        d, sink, engine, "子育て広場", slug=slug, sender=sender, approver=manager
    )
    waiting = p.wait_mail(sink, sender, "承認待ち")
    # the sender's own reply does not approve: it only may withdraw
    notice_to = str(waiting.msg["Reply-To"])
    p.send_to(d, notice_to, helpers.phone_reply(sender, notice_to, "RE: 了解", "了解"), sender)
    p.wait_mail(sink, sender, "取消の方法")
    assert p.state(engine, post_id) == "held"
    reply_to = str(request.msg["Reply-To"])
    p.send_to(d, reply_to, helpers.phone_reply(manager, reply_to, "RE: OK", "承認"), manager)
    sent_complete(engine, sink, post_id, slug)
    row = p.post_row(engine, post_id)
    assert row is not None and row["approver"] == manager

    # authenticated: an Authentication-Results header that came with the mail is no
    # evidence, even with our own authserv-id (issue 11): the post falls back to
    # confirmation; the DKIM cases are in test_bad_input_dkim.py
    slug, sender = "shogai-gakushu", "shogai@city.kawasaki.example.jp"
    p.populate(engine, slug)
    ar = "mx.city.kawasaki.example.jp; dkim=pass header.d=city.kawasaki.example.jp"
    forged = p.post_message("講座2", "本文\n", sender=sender, slug=slug)
    forged["Authentication-Results"] = ar
    p.send(d, forged, sender=sender)
    assert "認証が確認できなかった" in p.body(p.wait_mail(sink, sender, "投稿の確認"))
    assert not p.delivered(sink, slug)

    # a correction (第5条(1)): 【訂正】 threads under the channel's latest post
    p.populate(engine)
    first, request = held_post(d, sink, engine, "お知らせ")
    approve_on_web(d, request)
    sent_complete(engine, sink, first)
    original = str(p.delivered(sink)[0].msg["Message-ID"])
    second, request = held_post(d, sink, engine, "【訂正】お知らせ", n=2)
    approve_on_web(d, request)
    helpers.wait_until(lambda: p.state(engine, second) == "sent", what="correction sent")
    helpers.wait_until(lambda: len(p.delivered(sink)) == 2 * len(p.ACTIVE), what="delivered")
    corrections = [m for m in p.delivered(sink) if "訂正" in str(m.msg["Subject"])]
    assert len(corrections) == len(p.ACTIVE)
    assert all(m.msg["In-Reply-To"] == original for m in corrections)
    assert re.search(re.escape(original), str(corrections[0].msg["References"]))
    assert DOMAIN in original
