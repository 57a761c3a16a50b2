"""Signed fan-out on every core (issue 16 item 4): the signatures the worker processes make
verify with dkimpy for RSA and Ed25519, equal those made in process, survive a killed
worker, and a fan-out through the release task queues each subscriber once, signed."""

from __future__ import annotations

import datetime as dt
import os
import signal
from pathlib import Path

import dkim as dkimpy
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from haishin.context import Context
from haishin.delivery import fanout, signing
from haishin.delivery.dkim import DkimKey
from haishin.delivery.render import RenderContext, Rendered, headers_bytes, render
from haishin.directory import Directory
from haishin.posting.release import ReleaseSettings, release_due
from haishin.registry import load_valid
from haishin.store import open_store, posts
from haishin.store import subscribers as subs
from haishin.tokens import Keyring
from support import helpers
from support import posting as p

CONFIG = Path(__file__).resolve().parents[2] / "config"
REG = load_valid(CONFIG)
DOMAIN = b"mail.city.kawasaki.example.jp"
SLUG = "gomi-recycle"
KEYS = (
    DkimKey(DOMAIN, b"rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    DkimKey(DOMAIN, b"ed", ed25519.Ed25519PrivateKey.generate()),
)


def _dns(name: bytes, timeout: int = 5) -> bytes:
    return {k.selector: k for k in KEYS}[name.split(b".")[0]].public_txt()


def _verifies(raw: bytes) -> bool:
    verifier = dkimpy.DKIM(raw)
    return all(verifier.verify(idx=i, dnsfunc=_dns) for i in range(len(KEYS)))


def _rendered() -> Rendered:
    assert REG.service is not None
    channel = REG.channels[SLUG].value
    site = "https://mail.city.kawasaki.example.jp/"
    ctx = RenderContext(
        REG.service.value,
        channel,
        REG.departments[channel.department],
        web_url=site,
        channel_url=f"{site}channels/{SLUG}/",
        dkim_keys=KEYS,
    )
    return render(
        ctx, "p1", "お知らせ", "本文です。\n" * 40, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )


def test_workers_sign_in_other_processes_as_in_process_and_dkimpy_verifies() -> None:
    pool = signing.Signers(KEYS, workers=2)
    try:
        assert os.getpid() not in pool.warm()
        rendered = _rendered()
        personals = [rendered.personal_headers(f"u{i}@example.jp", f"t{i}") for i in range(450)]
        runs = list(pool.sign(rendered.plan, personals))
        # handed over in chunks of 200, given back in runs of whole chunks, in order
        assert all(len(r) % 200 == 0 for r in runs[:-1]) and sum(map(len, runs)) == 450
        signed = [s for r in runs for s in r]
        # RSA PKCS#1 v1.5 and Ed25519 are deterministic: the same bytes as made here
        assert signed == rendered.plan.many([k.key for k in KEYS], personals)
        for i in (0, 199, 200, 449):
            raw = signed[i] + headers_bytes(personals[i]) + rendered.common()
            assert raw.count(b"DKIM-Signature:") == 2
            assert _verifies(raw)
            # h= names the shared headers first and the recipient's own last (RFC 6376
            # §5.4.2: the signer chooses the order)
            h = raw.replace(b"\r\n", b"").split(b" h=")[1].split(b";")[0].split(b":")
            assert h[0] == b"from" and h[-2:] == [b"to", b"list-unsubscribe"]
        tampered = signed[0] + headers_bytes(personals[1]) + rendered.common()
        assert not dkimpy.DKIM(tampered).verify(idx=0, dnsfunc=_dns)
    finally:
        pool.close()


def test_a_killed_worker_costs_no_signature() -> None:
    pool = signing.Signers(KEYS, workers=2)
    try:
        pids = pool.warm()
        os.kill(next(iter(pids)), signal.SIGKILL)
        rendered = _rendered()
        personals = [rendered.personal_headers(f"u{i}@example.jp", "t") for i in range(300)]
        signed = [s for c in pool.sign(rendered.plan, personals) for s in c]
        # every recipient's own signatures, in order, whoever made them
        assert signed == rendered.plan.many([k.key for k in KEYS], personals)
        assert _verifies(signed[-1] + headers_bytes(personals[-1]) + rendered.common())
        # and a new pool takes the next batch
        assert len([s for c in pool.sign(rendered.plan, personals[:5]) for s in c]) == 5
    finally:
        pool.close()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def test_the_workers_end_with_a_killed_daemon(tmp_path: Path) -> None:
    """`serve --dkim-key` starts one signing worker per core; a SIGKILLed daemon leaves
    none of them behind."""
    d = helpers.start(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", extra=p.dkim_keys(tmp_path).args)
    workers = [k for k in _children(d.proc.pid) if b"spawn_main" in _cmdline(k)]
    assert len(workers) == signing.cores()
    d.kill()
    helpers.wait_until(
        lambda: not any(Path(f"/proc/{k}").exists() for k in workers), 10, "workers gone"
    )


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_signed_fan_out_queues_each_subscriber_once_and_every_row_verifies(
    db_url: str,
) -> None:
    key = Keyring(b"k" * 32)
    ctx = Context(Directory(REG, key), key, "https://w.example.jp/")
    engine = open_store(db_url)
    addresses = [f"user{i}@example.jp" for i in range(650)]
    with engine.begin() as conn:
        for a in addresses:
            subs.activate(conn, SLUG, a, method="test", evidence="test")
        post = p.approved_post(conn, ctx.post_ttl)
    # a first batch smaller than the recipients, its chunks written as their signatures
    # come back; then the release task goes on from the cursor with the rest
    with engine.begin() as conn:
        assert fanout.start(conn, ctx, post, KEYS) is not None
    assert fanout.next_batch(engine, ctx, post.id, KEYS, batch_size=450)
    with engine.connect() as conn:
        started = posts.get(conn, post.id)
    assert started is not None and started.recipients == 450
    assert release_due(engine, ctx, ReleaseSettings(dkim_keys=KEYS)) == 1
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT o.rcpt, o.headers, m.raw FROM outbound o"
                " JOIN outbound_messages m ON m.id = o.message_id ORDER BY o.id"
            )
        ).all()
        sent = posts.get(c, post.id)
    engine.dispose()
    assert sent is not None and sent.recipients == 650
    assert sorted(r.rcpt for r in rows) == sorted(addresses)  # each once
    for r in rows[::50]:
        raw = bytes(r.headers) + bytes(r.raw)
        assert f"\r\nTo: {r.rcpt}\r\n".encode() in raw
        assert _verifies(raw)


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_batches_read_ahead_are_dropped_when_another_daemon_wrote_first(db_url: str) -> None:
    """A signed fan-out hands the next batch to the workers while it writes this one
    (fanout.Stream). Two daemons' streams on one post, taking turns as a race would
    have them: each batch read ahead is used only if the cursor is still where it
    starts, so every subscriber is queued once, and every row verifies."""
    key = Keyring(b"k" * 32)
    ctx = Context(Directory(REG, key), key, "https://w.example.jp/")
    engine = open_store(db_url)
    addresses = [f"user{i}@example.jp" for i in range(10)]
    with engine.begin() as conn:
        for a in addresses:
            subs.activate(conn, SLUG, a, method="test", evidence="test")
        post = p.approved_post(conn, ctx.post_ttl)
    with engine.begin() as conn:
        assert fanout.start(conn, ctx, post, KEYS) is not None
    one = fanout.Stream(engine, ctx, post.id, KEYS, batch_size=3)
    two = fanout.Stream(engine, ctx, post.id, KEYS, batch_size=3)
    try:
        assert one.next()  # users 0-2 written; 3-5 read ahead and being signed
        assert two.next()  # from the cursor: 3-5 written; 6-8 read ahead
        assert one.next()  # its 3-5 are stale: dropped, 6-8 read again and written
        assert two.next()  # its 6-8 are stale too: 9 written
        assert not one.next() and not two.next()
    finally:
        one.close()
        two.close()
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT o.rcpt, o.headers, m.raw FROM outbound o"
                " JOIN outbound_messages m ON m.id = o.message_id ORDER BY o.id"
            )
        ).all()
        done = posts.get(c, post.id)
    engine.dispose()
    assert [r.rcpt for r in rows] == addresses  # each once, in order
    assert done is not None and done.recipients == 10 and done.cursor > 0
    for r in rows:
        assert _verifies(bytes(r.headers) + bytes(r.raw))


def test_runs_closed_early_cancel_the_chunks_not_yet_signed() -> None:
    """The workers are handed every chunk when `sign` is called, not when the runs are
    first read (so a batch is signed while the one before is written), and a batch
    dropped unread (read ahead, then stale) leaves nothing queued for them."""
    pool = signing.Signers(KEYS, workers=1)
    try:
        pool.warm()
        real = pool._executor
        handed: list[signing.SignedChunk] = []

        class Spy:
            def submit(self, *args: object) -> signing.SignedChunk:
                future = real().submit(*args)  # type: ignore[arg-type]
                handed.append(future)
                return future

        pool._executor = Spy  # type: ignore[assignment,method-assign]
        rendered = _rendered()
        personals = [rendered.personal_headers(f"u{i}@example.jp", "t") for i in range(4000)]
        runs = pool.sign(rendered.plan, personals)
        assert len(handed) == 20  # all 20 chunks, before any run was read
        runs.close()  # type: ignore[attr-defined]
        # one worker holds at most two of them (the one it signs, the one queued next)
        assert sum(f.cancelled() for f in handed) >= 17
        pool._executor = real  # type: ignore[method-assign]
        got = [s for c in pool.sign(rendered.plan, personals[:200]) for s in c]
        assert got == rendered.plan.many([k.key for k in KEYS], personals[:200])
    finally:
        pool.close()


def test_a_broken_pool_found_late_does_not_stop_the_next_batchs_pool() -> None:
    """With a batch read ahead, two batches' runs share the pool. The review's case: a
    worker dies, a later batch starts a new pool, and only then does the first batch
    meet its broken pool. It lets go of its own pool, not the new one, and signs its
    rest here; the later batch's signatures come from the new pool, whole."""
    pool = signing.Signers(KEYS, workers=1)
    try:
        (worker,) = pool.warm()
        broken = pool._pool
        rendered = _rendered()
        personals = [rendered.personal_headers(f"u{i}@example.jp", "t") for i in range(1000)]
        first = pool.sign(rendered.plan, personals)
        os.kill(worker, signal.SIGKILL)
        helpers.wait_until(lambda: all(f.done() for f in first.futures), 20, "pool broken")
        # a batch handed over now finds the pool broken: signed here, the pool let go
        here = [s for r in pool.sign(rendered.plan, personals[:5]) for s in r]
        assert pool._pool is None and len(here) == 5
        later = pool.sign(rendered.plan, personals)  # a new pool
        fresh = pool._pool
        assert fresh is not None and fresh is not broken
        expected = rendered.plan.many([k.key for k in KEYS], personals)
        assert [s for r in first for s in r] == expected  # met the broken pool last
        assert pool._pool is fresh  # ... and left the new one alone
        assert [s for r in later for s in r] == expected
    finally:
        pool.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_failed_read_ahead_costs_the_overlap_not_the_batch(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading the next batch ahead happens while this one is written; if that read
    fails (the database away a moment), this batch is still written whole and the next
    is read when it is due."""
    key = Keyring(b"k" * 32)
    ctx = Context(Directory(REG, key), key, "https://w.example.jp/")
    engine = open_store(db_url)
    addresses = [f"user{i}@example.jp" for i in range(5)]
    with engine.begin() as conn:
        for a in addresses:
            subs.activate(conn, SLUG, a, method="test", evidence="test")
        post = p.approved_post(conn, ctx.post_ttl)
    with engine.begin() as conn:
        assert fanout.start(conn, ctx, post, KEYS) is not None
    stream = fanout.Stream(engine, ctx, post.id, KEYS, batch_size=3)
    real = fanout._active_after
    calls: list[int] = []

    def flaky(*args: object) -> object:
        calls.append(1)
        if len(calls) == 2:  # the read ahead
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fanout, "_active_after", flaky)
    try:
        assert stream.next()  # users 0-2 written although the read ahead failed
        assert "reading the next batch ahead failed" in caplog.text
        assert stream.next()  # 3-4, read when due
        assert not stream.next()
    finally:
        stream.close()
    with engine.connect() as c:
        rcpts = [r for (r,) in c.execute(sa.text("SELECT rcpt FROM outbound ORDER BY id"))]
    engine.dispose()
    assert rcpts == addresses
