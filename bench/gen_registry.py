"""Generate a large, valid registry: N channels and about 2.5 N applications.

    python bench/gen_registry.py OUT_DIR [--channels 2000]

Every channel has an approved start; every channel then an approved change; a fifth
of them an approved stop; the rest of the 5,000 applications are rejected or pending
changes, which change nothing. Used by the `check` benchmark and by the site benchmark.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "config"
CATEGORIES = ["kosodate", "kenko", "kankyo", "bunka", "sangyo", "kurashi", "machi"]


def _app(
    number: str, kind: str, dept: str, slug: str, applied: str, requested: str, decision: str
) -> str:
    return (
        f"# 第1号様式\nnumber: {number}\nkind: {kind}\ndepartment: {dept}\nchannel: {slug}\n"
        f"applied: {applied}\napplicant:\n  name: 川崎 太郎\n  title: 課長\n"
        f"requested:\n{requested}{decision}"
    )


def _decision(result: str, date: str, n: int) -> str:
    reason = "  reason: 基本要件に合わないため\n" if result == "rejected" else ""
    return (
        f"# 第2号様式\ndecision:\n  result: {result}\n  date: {date}\n  by: general_manager\n"
        f"  notice_number: 川シ第{n}号\n{reason}"
    )


def generate(out: Path, channels: int = 2000, departments: int = 100) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "channels").mkdir(parents=True)
    (out / "applications").mkdir()
    (out / "outages").mkdir()
    shutil.copy(SAMPLE / "service.yaml", out / "service.yaml")
    for f in (SAMPLE / "outages").iterdir():
        shutil.copy(f, out / "outages" / f.name)

    lines = ["departments:\n"]
    for d in range(departments):
        lines.append(
            f"  dept{d:03d}:\n    name: 第{d}課\n    manager:\n      name: 課長 {d}\n"
            f"      title: 第{d}課長\n      address: dept{d:03d}-kacho@city.kawasaki.example.jp\n"
            f"    contact:\n      phone: 044-200-{d:04d}\n"
            f"      address: dept{d:03d}@city.kawasaki.example.jp\n"
        )
    (out / "departments.yaml").write_text("".join(lines), encoding="utf-8")

    notice = 10000
    # 2.5 applications a channel: start and change for all, stop for a fifth, and the
    # rest rejected or pending changes (which change nothing)
    extras = int(channels * 2.5) - 2 * channels - (channels + 4) // 5
    for c in range(channels):
        slug = f"ch{c:04d}-news"
        dept = f"dept{c % departments:03d}"
        cat = CATEGORIES[c % len(CATEGORIES)]
        title = f"お知らせ第{c}号"
        year = 2022 + c % 3
        start, change = f"R{year - 2018}-{c:04d}", f"R{year - 2017}-{c:04d}"
        notice += 1
        (out / "applications" / f"{start}.yaml").write_text(
            _app(
                start,
                "start",
                dept,
                slug,
                f"{year}-04-01",
                f"  title: {title}\n  category: {cat}\n  frequency: 月1回程度\n",
                _decision("approved", f"{year}-04-15", notice),
            ),
            encoding="utf-8",
        )
        notice += 1
        (out / "applications" / f"{change}.yaml").write_text(
            _app(
                change,
                "change",
                dept,
                slug,
                f"{year + 1}-04-01",
                "  frequency: 月2回程度\n",
                _decision("approved", f"{year + 1}-04-15", notice),
            ),
            encoding="utf-8",
        )
        current = change
        extra = f"R8-{c:04d}"
        if c % 5 == 0:  # a fifth stopped
            notice += 1
            (out / "applications" / f"{extra}.yaml").write_text(
                _app(
                    extra,
                    "stop",
                    dept,
                    slug,
                    "2026-04-01",
                    "  purpose: 終了\n",
                    _decision("approved", "2026-04-10", notice),
                ),
                encoding="utf-8",
            )
            current = extra
        elif extras > 0:
            extras -= 1
            rejected = c % 2 == 0
            notice += 1
            (out / "applications" / f"{extra}.yaml").write_text(
                _app(
                    extra,
                    "change",
                    dept,
                    slug,
                    "2026-05-01",
                    "  frequency: 毎日\n",
                    _decision("rejected", "2026-05-20", notice) if rejected else "",
                ),
                encoding="utf-8",
            )
        (out / "channels" / f"{slug}.yaml").write_text(
            f"# 生成されたチャネル {c}\nslug: {slug}\ntitle: {title}\n"
            f"summary: 第{c}課からのお知らせを配信します。\n"
            f"description: |\n  第{c}課からのお知らせを配信します。\n  詳しくは各課のページをご覧ください。\n"
            f"category: {cat}\nfrequency: 月2回程度\ndepartment: {dept}\n"
            f"senders:\n  - {dept}@city.kawasaki.example.jp\napproval: confirm\narchive: public\n"
            f"registered: {year}-04-15\napplication: {current}\n",
            encoding="utf-8",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--channels", type=int, default=2000)
    args = parser.parse_args()
    generate(args.out, args.channels)
    n_apps = len(list((args.out / "applications").iterdir()))
    print(f"{args.out}: {args.channels} channels, {n_apps} applications")


if __name__ == "__main__":
    main()
