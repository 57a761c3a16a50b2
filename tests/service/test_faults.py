"""Faults (第4条(1), 第8条): the smarthost away for a while, the spool's disk full, the
database briefly unreachable. Whatever got a 250 is processed exactly once; whatever did
not get one was never stored."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import smtplib
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from support import helpers, smarthost
from support.statuscodes import Code

DOMAIN = "mail.city.kawasaki.example.jp"
SUB = f"gomi-recycle-subscribe@{DOMAIN}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _send(d: helpers.Daemon, sender: str, body: bytes = b"") -> int:
    """One subscribe request; the SMTP code the daemon answered after DATA."""
    try:
        with smtplib.SMTP(*d.smtp, timeout=60) as c:
            c.sendmail(sender, [SUB], b"From: " + sender.encode() + b"\r\n\r\n" + body)
        return 250
    except smtplib.SMTPDataError as exc:
        return exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))[0]


def _deferred(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM outbound WHERE attempts >= 1 AND state = 'queued'")
            ).scalar_one()
        )


def test_smarthost_away_then_back_delivers_everything_once(tmp_path: Path, sqlite_url: str) -> None:
    port = _free_port()  # nothing listens there yet: the smarthost is down
    d = helpers.start(tmp_path, sqlite_url, smarthost=port)
    engine = sa.create_engine(sqlite_url)
    senders = [f"away{i}@example.jp" for i in range(20)]
    stopped = False
    try:
        assert [_send(d, s) for s in senders] == [Code.OK] * 20
        helpers.wait_until(lambda: _deferred(engine) == 20, what="every confirmation deferred")
        with smarthost.sink(port) as back:  # the smarthost returns
            back.wait(20)
            helpers.wait_until(lambda: helpers.drained(engine), what="the queue to drain")
            assert d.stop() == 0  # before the sink goes: the daemon's connections close
            stopped = True
            got = sorted(r for m in back.messages for r in m.rcpts)
        assert got == sorted(senders)  # each once
    finally:
        if not stopped:
            d.stop()
        engine.dispose()


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_answers_451_and_loses_nothing_it_accepted(tmp_path: Path) -> None:
    with _small_disk(tmp_path / "small", "6m") as disk:
        url = f"sqlite:///{disk / 'haishin.db'}"
        (disk / "filler").write_bytes(b"\0" * 4_500_000)  # what else is on the disk
        with smarthost.sink() as sink:
            d = helpers.start(tmp_path, url, smarthost=sink.port)
            try:
                body = (b"x" * 76 + b"\r\n") * 2600  # about 200 KB in lines of 78
                codes = {
                    f"full{i}@example.jp": _send(d, f"full{i}@example.jp", body) for i in range(40)
                }
                accepted = sorted(s for s, c in codes.items() if c == Code.OK)
                refused = sorted(s for s, c in codes.items() if c != 250)
                assert accepted, "nothing was accepted"
                assert refused, "the disk never filled"
                assert {codes[s] for s in refused} == {
                    Code.LOCAL_ERROR
                }  # temporary: the client retries
                # the operator makes room; everything that got 250 is answered exactly once
                (disk / "filler").unlink()
                sink.wait(len(accepted), timeout=60)
                engine = sa.create_engine(url)
                helpers.wait_until(lambda: helpers.drained(engine), what="the queue to drain")
                engine.dispose()
                assert sorted(r for m in sink.messages for r in m.rcpts) == accepted
            finally:
                d.stop()


class _Proxy:
    """A TCP relay to PostgreSQL that can be cut and restored: the database 'goes away'.

    While cut it keeps its port (so nothing else can take it) and drops every connection
    at once, which a client sees as the server gone."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.cut = False
        self.trap = False
        """Cut as the sender commits a claim of some rows: the COMMIT reaches the server,
        its answer never comes back (`trapped` is set then)."""
        self.trapped = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(self._client, "127.0.0.1", 0)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _pipe(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: dict[str, bool], up: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await r.read(65536):
                if self.trap:
                    self._watch(data, seen, up)
                w.write(data)
                if seen.get("commit"):
                    # the COMMIT is written (close flushes it), nothing more is relayed
                    self._cut_all()
                    self.trapped.set()
                    break
                await w.drain()
        w.close()

    def _watch(self, data: bytes, seen: dict[str, bool], up: bool) -> None:
        """Follow one connection's PostgreSQL protocol just enough: the claim's UPDATE
        (queue.claim: it sets claimed_at and returns the rows), its CommandComplete
        ("UPDATE n", n > 0), then the COMMIT."""
        if up and b"claimed_at" in data and b"RETURNING" in data:
            seen["claim"] = True
        elif not up and seen.get("claim"):
            done = re.search(rb"C\x00\x00\x00.UPDATE (\d+)\x00", data, re.DOTALL)
            if done:
                seen["claim"] = False
                seen["rows"] = int(done[1]) > 0
        elif up and seen.get("rows") and b"COMMIT" in data:
            self.trap = False
            seen["commit"] = True

    async def _client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if self.cut:
            w.close()
            return
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            w.close()
            return
        self.writers |= {w, uw}
        seen: dict[str, bool] = {}
        await asyncio.gather(self._pipe(r, uw, seen, True), self._pipe(ur, w, seen, False))

    def _cut_all(self) -> None:
        self.cut = True
        for w in self.writers:
            w.close()
        self.writers.clear()

    def down(self) -> None:
        async def cut() -> None:
            self._cut_all()

        asyncio.run_coroutine_threadsafe(cut(), self.loop).result(5)

    def up(self) -> None:
        self.cut = False

    def close(self) -> None:
        self.down()

        async def settle() -> None:  # let the relays see their sockets closed
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(settle(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _outbound_states(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT id, state, attempts, claimed_at, claimed_by FROM outbound")
            )
        ]


def test_database_briefly_unreachable(tmp_path: Path) -> None:
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with helpers.pg_database() as url, smarthost.sink() as sink:
        proxy = _Proxy(("127.0.0.1", 5432))
        via_proxy = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        d = helpers.start(tmp_path, via_proxy, smarthost=sink.port)
        try:
            codes = {f"before{i}@example.jp": _send(d, f"before{i}@example.jp") for i in range(5)}
            proxy.down()  # the database goes away
            codes |= {f"during{i}@example.jp": _send(d, f"during{i}@example.jp") for i in range(5)}
            proxy.up()  # and comes back
            codes |= {f"after{i}@example.jp": _send(d, f"after{i}@example.jp") for i in range(5)}
            # before and after: taken; while the database was away: 451, so the client
            # keeps the mail and retries (never a 250 for mail that was not stored)
            assert {s: c for s, c in codes.items() if c != Code.OK} == {
                f"during{i}@example.jp": 451 for i in range(5)
            }
            accepted = sorted(s for s, c in codes.items() if c == Code.OK)
            engine = sa.create_engine(url)
            try:
                sink.wait(len(accepted), timeout=60)
                helpers.wait_until(lambda: helpers.drained(engine), what="the queue to drain")
            except AssertionError as exc:
                # what a stranded row looks like, for the next time (a claim committed
                # while its answer was lost stayed `sending`: queue.Claims)
                raise AssertionError(f"{exc}; outbound rows: {_outbound_states(engine)}") from exc
            finally:
                engine.dispose()
            assert sorted(r for m in sink.messages for r in m.rcpts) == accepted
        finally:
            d.stop()
            proxy.close()


def test_database_gone_as_a_claim_commits(tmp_path: Path) -> None:
    """The database committed a claim and went away before its answer arrived: the
    sender never had those rows, and they must not stay `sending` (they did, 1 run in
    4 of the test above); released untried, each goes out once."""
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with helpers.pg_database() as url, smarthost.sink() as sink:
        proxy = _Proxy(("127.0.0.1", 5432))
        via_proxy = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        d = helpers.start(tmp_path, via_proxy, smarthost=sink.port)
        engine = sa.create_engine(url)
        try:
            proxy.trap = True
            codes = {f"lost{i}@example.jp": _send(d, f"lost{i}@example.jp") for i in range(3)}
            assert proxy.trapped.wait(30), "no claim was committed"
            proxy.up()
            codes |= {f"later{i}@example.jp": _send(d, f"later{i}@example.jp") for i in range(3)}
            # a mail sent while the database was away is refused for now, never lost
            assert set(codes.values()) <= {Code.OK, Code.LOCAL_ERROR}, codes
            accepted = sorted(s for s, c in codes.items() if c == Code.OK)
            assert any(s.startswith("lost") for s in accepted)
            try:
                sink.wait(len(accepted), timeout=30)
                helpers.wait_until(lambda: helpers.drained(engine), what="the queue to drain")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; outbound rows: {_outbound_states(engine)}") from exc
            assert sorted(r for m in sink.messages for r in m.rcpts) == accepted  # each once
            assert "of a claim whose answer was lost back to the queue" in helpers.daemon_log(d)
        finally:
            engine.dispose()
            d.stop()
            proxy.close()
