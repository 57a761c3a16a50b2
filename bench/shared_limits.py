#!/usr/bin/env python3
"""The cost of limits shared by the daemons of one PostgreSQL database (issue 16 item 1,
outbound/sharing.py): the sender's rate on a small fan-out, limits kept in the process
(`local`, as SQLite does) against limits kept in the database (`shared`), paired runs
in turn on the same machine, into Postfix's smtp-sink.

    .venv/bin/python bench/shared_limits.py [N] [--runs 3] [--cap 2000] [--sqlite]

With `--sqlite`, one mode only (SQLite keeps the limits in process): the figure to set
beside the same file run from an older tree, to show SQLite stays as fast.

Each run: a fresh store, N rows to example.net with a carrier domain's rows (1 in 20)
limited to 300 a minute and 2 connections as config/service.yaml has it, the overall
cap at `--cap` msgs/s (0: none), one sender in process, timed from its start to the
last row settled. Printed per mode: msgs/s of each run and the median; then the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from haishin.outbound import sender  # noqa: E402

with suppress(ImportError):  # an older tree, before the limits were shared: SQLite only
    from haishin.outbound.sharing import LOCAL, for_engine
from haishin.registry.model import Delivery, DomainLimit  # noqa: E402
from haishin.store import open_store, queue  # noqa: E402
from haishin.store.states import QueueState  # noqa: E402

SINK = "/usr/sbin/smtp-sink"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CARRIER = "docomo.ne.jp"


@contextmanager
def pg_database() -> Iterator[str]:
    name = f"haishin_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drained(engine: sa.Engine) -> bool:
    counts = queue.counts(engine)
    return not counts.get(QueueState.QUEUED, 0) and not counts.get(QueueState.SENDING, 0)


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


def one_run(n: int, cap: float, shared: bool | None, port: int) -> float:
    """`shared` None: SQLite."""
    with pg_database() if shared is not None else sqlite_database() as url:
        engine = open_store(url)
        rcpts = [
            f"k{i:06d}@{CARRIER}" if i % 20 == 0 else f"o{i:06d}@example.net" for i in range(n)
        ]
        # the carrier's rows beyond what its pace sends soon wait in the queue: time
        # only the others (the carrier's pace is the limit, not a cost)
        others = n - len([r for r in rcpts if r.endswith(CARRIER)])
        with engine.begin() as conn:
            queue.enqueue(
                conn, b"Subject: t\r\n\r\n" + b"x" * 4000 + b"\r\n", "b@x", rcpts, kind="post"
            )
        delivery = Delivery(
            connections=8,
            messages_per_second=cap or None,
            domains={CARRIER: DomainLimit(messages_per_minute=300, connections=2)},
        )
        settings = sender.SendSettings(smarthost=("127.0.0.1", port), maildir=Path("/nonexistent"))
        if shared is not None:
            sender.for_engine = for_engine if shared else (lambda e: LOCAL)  # type: ignore[attr-defined]

        def sent() -> int:
            return queue.counts(engine).get(QueueState.SENT, 0)

        async def main() -> float:
            task = asyncio.create_task(
                sender.run(engine, settings, asyncio.Event(), 0.05, lambda: delivery)
            )
            start = time.monotonic()
            try:
                while await asyncio.to_thread(sent) < others:
                    await asyncio.sleep(0.05)  # polling the store, as the tests do
            finally:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            return others / (time.monotonic() - start)

        rate = asyncio.run(main())
        engine.dispose()
        return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cap", type=float, default=2000.0)
    ap.add_argument("--sqlite", action="store_true")
    args = ap.parse_args()
    port = free_port()
    sink = subprocess.Popen(
        [SINK, "-u", "nobody", "-t", "300", f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # smtp-sink has no ready line
    modes = {"sqlite": None} if args.sqlite else {"local": False, "shared": True}
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        for _ in range(args.runs):
            for mode, shared in modes.items():  # in turn: the machine's load hits both
                rates[mode].append(one_run(args.n, args.cap, shared, port))
                print(f"{mode}: {rates[mode][-1]:.0f} msgs/s", flush=True)
    finally:
        sink.terminate()
        sink.wait()
    med = {m: statistics.median(r) for m, r in rates.items()}
    cap = f"cap {args.cap:.0f}/s" if args.cap else "no cap"
    print(f"N={args.n}, {cap}, {args.runs} run(s)")
    for mode, r in rates.items():
        print(f"{mode}: " + ", ".join(f"{x:.0f}" for x in r) + f" msgs/s (median {med[mode]:.0f})")
    if not args.sqlite:
        print(f"shared vs local: {med['shared'] / med['local']:.2f}x")


if __name__ == "__main__":
    main()
