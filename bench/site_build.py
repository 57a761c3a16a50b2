"""Benchmark: the site build on a generated registry beside a plain Pelican build.

    python bench/site_build.py [--channels 1000] [--posts 20000] [--keep DIR]

Generates a registry of N channels (bench/gen_registry.py: a fifth of them stopped) and
20,000 archived posts spread over the channels the site lists, and builds the site with
the standard command (`pelican content -s pelicanconf.py`). In the same run, a plain
Pelican project of the same 20,000 posts as Markdown articles (Pelican's defaults and
default theme, with the quickstart's DEFAULT_PAGINATION = 10) is built the same way.
Each build is a fresh process; its wall time and peak RSS (`wait4` rusage) are printed.
Issue 4's target: ours within 1.5 times plain Pelican's time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_registry import generate  # noqa: E402  (a sibling script, not a package)

NOW = "2026-11-25"
BODY = """{title}についてお知らせします。

対象の方は、期限までに手続きをお願いします。詳しくは担当部署のページをご覧ください。

- 日時: {month}月{day}日（土）10時〜12時
- 会場: 市役所 第{n}会議室
- 持ち物: 筆記用具、本人確認書類

申込みは電話またはメールで受け付けます。定員になり次第、締め切ります。
ご不明な点は、このメールの末尾にある問い合わせ先へお送りください。
"""


def _post(title: str, when: dt.datetime, n: int, extra: str = "") -> str:
    body = BODY.format(title=title, month=when.month, day=when.day, n=n % 9 + 1)
    return f"Title: {title}\nDate: {when:%Y-%m-%d %H:%M}\n{extra}\n{body}"


def make_inputs(base: Path, channels: int, posts: int) -> tuple[Path, Path, Path, int]:
    """The registry, the archive for our build, and the plain project's content."""
    from haishin.registry import channel_states, load_valid

    config, archive, plain = base / "config", base / "archive", base / "plain" / "content"
    generate(config, channels)
    reg = load_valid(config)
    states = channel_states(reg, dt.date.fromisoformat(NOW))
    listed = sorted(slug for slug, s in states.items() if s.listed)
    plain.mkdir(parents=True)
    start = dt.datetime(2024, 1, 1, 9, 0)
    for i in range(posts):
        slug = listed[i % len(listed)]
        when = start + dt.timedelta(hours=i)
        title = f"お知らせ {i // len(listed) + 1} 号（{slug}）"
        folder = archive / slug
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{when:%Y-%m-%d}-{i:05d}.md").write_text(_post(title, when, i), "utf-8")
        (plain / f"post-{i:05d}.md").write_text(
            _post(title, when, i, f"Category: {slug}\nSlug: post-{i:05d}\n"), "utf-8"
        )
    return config, archive, plain, len(listed)


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err.decode(errors='replace')[-3000:]}")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        t0 = time.perf_counter()
        config, archive, plain, listed = make_inputs(base, args.channels, args.posts)
        print(f"inputs generated in {time.perf_counter() - t0:.1f} s", flush=True)

        (plain.parent / "pelicanconf.py").write_text(
            'SITENAME = "plain"\nPATH = "content"\nTIMEZONE = "Asia/Tokyo"\n'
            'DEFAULT_LANG = "ja"\nSITEURL = ""\nDEFAULT_PAGINATION = 10\n',
            encoding="utf-8",
        )
        pelican = [sys.executable, "-m", "pelican"]
        plain_cmd = [*pelican, "content", "-s", "pelicanconf.py", "-o", str(base / "plain-out")]
        ours_cmd = [*pelican, "content", "-s", "pelicanconf.py", "-o", str(base / "site-out")]
        ours_cmd += ["-e", f'HAISHIN_CONFIG="{config}"', f'HAISHIN_ARCHIVE="{archive}"']
        ours_cmd += [f'HAISHIN_NOW="{NOW}"']

        plain_s, plain_kb = timed(plain_cmd, plain.parent)
        plain_pages = sum(1 for _ in (base / "plain-out").rglob("*.html"))
        print(f"plain Pelican: {args.posts} articles, {plain_pages} pages: {plain_s:.1f} s, "
              f"peak RSS {plain_kb / 1024:.0f} MiB", flush=True)  # fmt: skip
        ours_s, ours_kb = timed(ours_cmd, ROOT)
        pages = sum(1 for _ in (base / "site-out").rglob("*.html"))
        print(f"haishin site: {args.channels} channels ({listed} listed), {args.posts} posts, "
              f"{pages} pages: {ours_s:.1f} s, peak RSS {ours_kb / 1024:.0f} MiB", flush=True)  # fmt: skip
        ratio = ours_s / plain_s
        verdict = "within" if ratio <= 1.5 else "OVER"
        print(
            f"ratio {ratio:.2f} ({verdict} the 1.5x target); {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
        )


if __name__ == "__main__":
    main()
