"""`haishin site build`: wraps the Pelican build, and never leaves a half-built site."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from haishin.posting.archive import export
from haishin.store import open_store, posts
from haishin.store.posts import PostState

from .conftest import CONFIG, ROOT

HAISHIN = [sys.executable, "-c", "from haishin.cli import main; main()"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HAISHIN, "site", "build", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_site_build_writes_the_site(tmp_path: Path) -> None:
    out = tmp_path / "public"
    result = run("--output", str(out), "--now", "2026-11-25")
    assert result.returncode == 0, result.stderr
    assert "掲載チャネル 8 件" in result.stdout
    assert (out / "index.html").exists()
    assert (out / "channels" / "kosodate-news" / "qr.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["public"]  # no staging folder left


def test_invalid_registry_keeps_the_last_good_site(tmp_path: Path) -> None:
    out = tmp_path / "public"
    assert run("--output", str(out), "--now", "2026-11-25").returncode == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    service = config / "service.yaml"
    service.write_text(service.read_text("utf-8").replace("mail_domain:", "mail_domian:"), "utf-8")
    result = run("--config", str(config), "--output", str(out))
    assert result.returncode == 1
    assert "service.yaml:" in result.stderr
    assert "公開サイトを作成しませんでした" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "public"]


def _stored(db_url: str, rows: list[tuple[str, str, str, str, bool]]) -> None:
    """Back numbers in a real store, as the release task keeps them (posts + archive)."""
    engine = open_store(db_url)
    sent_at = dt.datetime(2026, 11, 21, 0, 30, tzinfo=dt.UTC)
    with engine.begin() as conn:
        for channel, name, subject, text, public in rows:
            post = posts.create(
                conn,
                channel=channel,
                spool_id=None,
                sender="s@city.kawasaki.example.jp",
                subject=subject,
                text=text,
                html=None,
                message_id=None,
                state=PostState.SENT,
                approval="confirm",
                findings=[],
                send_at=None,
                ttl=dt.timedelta(days=1),
            )
            posts.add_archive(conn, post, name, sent_at, public)
    engine.dispose()


def test_back_numbers_from_the_store_are_the_pages_the_files_made(tmp_path: Path) -> None:
    """Issue 16 item 2: `--db` publishes the store's back numbers with the same bytes a
    back-number file gave; beside the git folder the store's copy of a name wins, and a
    post of a channel whose archive was private when it went out is not published."""
    subject, text = "予防接種のお知らせ", "11月の予防接種は\n# 見出しではありません\n"
    files = tmp_path / "files"
    export(
        files,
        "kosodate-news",
        "2026-11-21-0042",
        subject,
        text,
        dt.datetime(2026, 11, 21, 0, 30, tzinfo=dt.UTC),
    )
    by_file = tmp_path / "by-file"
    assert (
        run("--output", str(by_file), "--now", "2026-11-25", "--archive", str(files)).returncode
        == 0
    )

    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    _stored(
        db_url,
        [
            ("kosodate-news", "2026-11-21-0042", subject, text, True),
            ("kosodate-news", "2026-11-21-0043", "非公開の回", "本文\n", False),
        ],
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    by_store = tmp_path / "by-store"
    result = run(
        "--output", str(by_store), "--now", "2026-11-25", "--archive", str(empty), "--db", db_url
    )
    assert result.returncode == 0, result.stderr
    pages = {p.relative_to(by_file): p.read_bytes() for p in by_file.rglob("*") if p.is_file()}
    again = {p.relative_to(by_store): p.read_bytes() for p in by_store.rglob("*") if p.is_file()}
    assert pages.keys() == again.keys()
    assert [k for k in pages if pages[k] != again[k]] == []  # the same site, byte for byte

    # the git folder has another post of the same name: the store's is published, once
    (files / "kosodate-news" / "2026-11-21-0042.md").write_text(
        "Title: 古い題名\nDate: 2026-11-21 09:30\n\n古い本文\n", "utf-8"
    )
    both = tmp_path / "both"
    result = run(
        "--output", str(both), "--now", "2026-11-25", "--archive", str(files), "--db", db_url
    )
    assert result.returncode == 0, result.stderr
    assert (both / "channels" / "kosodate-news" / "2026-11-21-0042.html").read_bytes() == pages[
        Path("channels/kosodate-news/2026-11-21-0042.html")
    ]
    listing = (both / "channels" / "kosodate-news" / "backnumbers.html").read_text("utf-8")
    assert listing.count(subject) == 1 and "古い題名" not in listing
    assert not (both / "channels" / "kosodate-news" / "2026-11-21-0043.html").exists()
    assert "非公開の回" not in "".join(p.read_text("utf-8") for p in both.rglob("*.html"))
