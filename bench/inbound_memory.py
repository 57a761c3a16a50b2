"""Memory of a daemon holding 1,000,000 subscribers (issue 5).

Fills a database with N active subscribers spread over the sample channels, starts
`haishin serve` on it, sends subscribe requests that hit existing subscribers (each one is
looked up: "already subscribed") and new ones, and reports the daemon's resident memory
(VmRSS now, VmHWM peak) after start and after the traffic. The daemon keeps subscribers
in the database, not in memory, so the figure should not grow with N.

    .venv/bin/python bench/inbound_memory.py [--subscribers N] [--db URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from haishin.store import open_store
from haishin.store.schema import subscribers

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "mail.city.kawasaki.example.jp"
CHANNELS = ["gomi-recycle", "kosodate-news", "kenshin-info", "kaigo-yobou", "shogai-gakushu"]


def status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def fill(url: str, n: int) -> float:
    engine = open_store(url)
    now = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    chunk = 20_000
    for base in range(0, n, chunk):
        rows = [
            {
                "channel": CHANNELS[i % len(CHANNELS)],
                "address": f"member{i:07d}@example.jp",
                "address_key": f"member{i:07d}@example.jp",
                "status": "active",
                "created_at": now,
                "updated_at": now,
                "confirmed_at": now,
                "consent_method": "bench",
                "consent_evidence": "bench",
            }
            for i in range(base, min(base + chunk, n))
        ]
        with engine.begin() as conn:
            conn.execute(subscribers.insert(), rows)
    engine.dispose()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="haishin-mem-"))
    config = tmp / "config"
    shutil.copytree(ROOT / "config", config)
    service = config / "service.yaml"
    # the per-network and overall caps of limits.confirmations (and auto_replies)
    text = re.sub(r"per_network: \{count: \d+", "per_network: {count: 9999999", service.read_text())
    service.write_text(re.sub(r"overall: \{count: \d+", "overall: {count: 10000000", text))
    url = args.db or f"sqlite:///{tmp / 'haishin.db'}"
    took = fill(url, args.subscribers)
    size = (tmp / "haishin.db").stat().st_size if url.startswith("sqlite") else 0
    cmd = [
        str(Path(sys.executable).with_name("haishin")),
        "serve",
        "--config",
        str(config),
        "--db",
        url,
        "--smtp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--maildir",
        str(tmp / "maildir"),
    ]
    env = dict(os.environ, HAISHIN_SECRET="bench-secret-0123456789")
    with open(tmp / "daemon.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        assert proc.stdout is not None
        port = int(re.search(r"smtp=[\d.]+:(\d+)", proc.stdout.readline()).group(1))  # type: ignore[union-attr]
        idle = status(proc.pid)
        with smtplib.SMTP("127.0.0.1", port) as c:
            for i in range(args.requests):
                # half existing members (looked up), half newcomers (a confirmation each)
                who = (
                    f"member{(i * 7919) % args.subscribers:07d}@example.jp"
                    if i % 2
                    else f"new{i}@example.jp"
                )
                rcpt = f"{CHANNELS[((i * 7919) % args.subscribers) % len(CHANNELS)]}-subscribe@{DOMAIN}"
                c.sendmail(who, [rcpt], f"From: {who}\r\n\r\n".encode())
        engine = sa.create_engine(url)
        while True:
            with engine.connect() as conn:
                if not conn.execute(
                    sa.text("SELECT count(*) FROM inbound WHERE state='new'")
                ).scalar():
                    break
            time.sleep(0.05)
        engine.dispose()
        busy = status(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    print(
        f"daemon memory with {args.subscribers:,} subscribers "
        f"({'sqlite %.0f MB' % (size / 1e6) if size else url.split(':')[0]}, filled in {took:.0f} s): "
        f"RSS after start {idle['VmRSS'] / 1024:.0f} MB; after {args.requests:,} subscribe requests "
        f"RSS {busy['VmRSS'] / 1024:.0f} MB, peak {busy['VmHWM'] / 1024:.0f} MB"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
