"""Inbound subscribe requests per second, end to end (issue 5).

10,000 subscribe requests from 20 concurrent SMTP clients (smtplib, one connection each)
to `haishin serve` (a subprocess, SQLite in WAL mode with synchronous=FULL, in a temporary
folder). The clock stops when the 10,000th confirmation request is in the outbound queue
(committed). The sample registry is copied with the per-network and overall confirmation
limits raised, since 10,000 requests an hour is exactly what the limits exist to refuse.
Each client connects from its own loopback /24 (127.0.n.1), so the per-network counts
are taken for 20 networks, as with real clients.

    .venv/bin/python bench/inbound_subscribe.py [--requests N] [--clients C] [--db URL]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "mail.city.kawasaki.example.jp"
CHANNELS = ["gomi-recycle", "kosodate-news", "kenshin-info", "kaigo-yobou"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite in a temp dir)")
    ap.add_argument("--smarthost", default=None, help="HOST:PORT of a sink; default: maildir")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="haishin-bench-"))
    config = tmp / "config"
    shutil.copytree(ROOT / "config", config)
    service = config / "service.yaml"
    # the per-network and overall caps of limits.confirmations (and auto_replies)
    text = re.sub(r"per_network: \{count: \d+", "per_network: {count: 9999999", service.read_text())
    service.write_text(re.sub(r"overall: \{count: \d+", "overall: {count: 10000000", text))
    db = args.db or f"sqlite:///{tmp / 'haishin.db'}"
    cmd = [
        str(Path(sys.executable).with_name("haishin")),
        "serve",
        "--config",
        str(config),
        "--db",
        db,
        "--smtp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--maildir",
        str(tmp / "maildir"),
    ]
    if args.smarthost:
        cmd += ["--smarthost", args.smarthost]
    env = dict(os.environ, HAISHIN_SECRET="bench-secret-0123456789")
    with open(tmp / "daemon.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(re.search(r"smtp=[\d.]+:(\d+)", line).group(1))  # type: ignore[union-attr]
        engine = sa.create_engine(db)
        per_client = args.requests // args.clients
        errors: list[str] = []

        def client(n: int) -> None:
            with smtplib.SMTP("127.0.0.1", port, source_address=(f"127.0.{n + 1}.1", 0)) as c:
                for i in range(per_client):
                    who = f"bench-{n:02d}-{i:05d}@example.jp"
                    rcpt = f"{CHANNELS[i % len(CHANNELS)]}-subscribe@{DOMAIN}"
                    try:
                        c.sendmail(who, [rcpt], f"From: {who}\r\nSubject: \r\n\r\n".encode())
                    except smtplib.SMTPException as exc:
                        errors.append(str(exc))

        total = per_client * args.clients
        cpu_before = _cpu_seconds(proc.pid)
        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = time.perf_counter() - start
        while True:
            with engine.connect() as c:
                queued = c.execute(
                    sa.text("SELECT count(*) FROM outbound_messages WHERE kind = 'confirm'")
                ).scalar_one()
            if queued >= total - len(errors):
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        rss = _rss_kb(proc.pid)
        cpu = _cpu_seconds(proc.pid) - cpu_before
        while True:  # and until every confirmation has left (maildir or smarthost)
            with engine.connect() as c:
                left = c.execute(
                    sa.text("SELECT count(*) FROM outbound WHERE state IN ('queued', 'sending')")
                ).scalar_one()
            if not left:
                break
            time.sleep(0.05)
        delivered = time.perf_counter() - start
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        engine.dispose()
    print(
        f"inbound subscribe: {total} requests, {args.clients} clients, "
        f"{'sqlite' if db.startswith('sqlite') else db.split(':')[0]}: "
        f"all 250 after {accepted:.2f} s ({total / accepted:.0f}/s accepted), "
        f"all confirmations queued after {elapsed:.2f} s = {total / elapsed:.0f} requests/s end to end; "
        f"all delivered after {delivered:.2f} s; "
        f"errors {len(errors)}; daemon CPU {cpu / total * 1000:.2f} ms per request "
        f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); daemon RSS {rss / 1024:.0f} MB"
    )
    shutil.rmtree(tmp, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    """user + system time of the daemon, all threads (proc(5): fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
