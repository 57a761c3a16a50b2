"""A fan-out's DKIM signatures made on every core, ahead of the sender (issue 16 item 4).

An RSA-2048 signature costs about a third of a millisecond of one core, more than all the
rest of a recipient's way out; one process signs at most one core's worth, and the GIL
keeps it from the sender's event loop meanwhile. So a post's per-recipient signatures are
made in worker processes, one per core, each holding the keys (loaded once, from PEM:
key objects do not cross processes) and given the post's signing plan (dkim.Plan, a few
hundred bytes) with each chunk of recipients. The fan-out (fanout.Stream) hands over a
whole batch at once, and the next one while it writes this one's rows, each chunk's as
soon as its signatures are back: the first rows are queued a chunk after the approval,
the workers never wait for the daemon between batches, and the sender delivers while
the rest are signed.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from .dkim import DkimKey, Header, Key, Plan

log = logging.getLogger(__name__)

CHUNK = 200
"""Recipients per task: small enough that the first rows are queued within tens of
milliseconds, large enough that the hand-over costs little beside the signatures."""

ORPHAN_CHECK = 0.5
"""Seconds between a worker's looks at whether its daemon is still there."""

_KEYS: list[Key] = []
"""In a worker process: the keys, in the order of the pool's DkimKeys."""


def _load(pems: list[bytes], parent: int) -> None:
    keys = [serialization.load_pem_private_key(p, password=None) for p in pems]
    _KEYS[:] = [k for k in keys if isinstance(k, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)]
    threading.Thread(target=_orphaned, args=(parent,), daemon=True).start()


def _orphaned(parent: int) -> None:
    """A worker whose daemon died (SIGKILL) ends too: its task queue's pipe stays open in
    the other workers, so it would never see an end of file and wait forever."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK)
    os._exit(0)


def _sign(plan: Plan, personals: list[Sequence[Header]]) -> list[bytes]:
    return plan.many(_KEYS, personals)


def _ready() -> int:
    return os.getpid()


SignedChunk = cf.Future[list[bytes]]


def _ok(future: SignedChunk) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def cores() -> int:
    """The cores this process may run on (a container or taskset may give fewer)."""
    return len(os.sched_getaffinity(0)) or 1


class Signers:
    """Worker processes, one per core, that sign with one set of keys."""

    def __init__(self, keys: Sequence[DkimKey], workers: int | None = None) -> None:
        self.keys = tuple(keys)
        self.workers = workers or cores()
        self._pems = [
            k.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            for k in self.keys
        ]
        self._lock = threading.Lock()
        self._pool: cf.ProcessPoolExecutor | None = None

    def _executor(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the daemon has threads (the event loop's executor, the
                # database's), and a forked child could inherit a lock held by one of them
                self._pool = cf.ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_load,
                    initargs=(self._pems, os.getpid()),
                )
            return self._pool

    def warm(self) -> set[int]:
        """Start the workers now (a spawned interpreter takes a few hundred
        milliseconds), so that the first approval does not wait for them; their pids."""
        pool = self._executor()
        return {f.result() for f in [pool.submit(_ready) for _ in range(self.workers * 2)]}

    def sign(self, plan: Plan, personals: Sequence[Sequence[Header]]) -> Runs:
        """The signature lines of each recipient, in order, in runs: every chunk of
        CHUNK is handed to the workers now (not when the runs are first asked for, so a
        batch can be handed over while the one before is written: fanout.Stream), and
        each run is what is ready when the caller asks again (at least one chunk):
        while the caller's write is slow, the next write takes more, so writes never
        fall behind the signing. Closing the runs early cancels what is not yet signed."""
        chunks = [list(personals[i : i + CHUNK]) for i in range(0, len(personals), CHUNK)]
        pool: cf.ProcessPoolExecutor | None = None
        futures: list[SignedChunk] = []
        try:
            pool = self._executor()
            for chunk in chunks:
                futures.append(pool.submit(_sign, plan, chunk))
        except (cf.BrokenExecutor, OSError, RuntimeError) as exc:
            # no worker could be started (a process limit, the interpreter shutting
            # down): this batch is signed here, slower but whole
            log.warning("dkim: signing in the daemon's own process (%s)", exc)
            for future in futures:
                future.cancel()
            futures = []
            if pool is not None:
                self.discard(pool)
        return Runs(self, plan, chunks, futures, pool)

    def discard(self, pool: cf.ProcessPoolExecutor) -> None:
        """A pool found broken is let go, if it is still this one's: with a batch read
        ahead, two batches' runs share the pool, and the second to find it broken must
        not shut down the new pool the first one's successor started. Its chunks are not
        cancelled here: each batch's runs cancel their own (`Runs.close`)."""
        with self._lock:
            if self._pool is not pool:
                return
            self._pool = None
        pool.shutdown(wait=False)

    def close(self, wait: bool = False) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)


class Runs:
    """One batch's signatures as they come back (`Signers.sign`): an iterator of runs,
    each at least one chunk; `close` cancels the chunks not yet signed (a batch read
    ahead and then found stale, fanout.Stream), even before the first run was read."""

    def __init__(
        self,
        signers: Signers,
        plan: Plan,
        chunks: list[list[Sequence[Header]]],
        futures: list[SignedChunk],
        pool: cf.ProcessPoolExecutor | None = None,
    ) -> None:
        self.signers = signers
        self.plan = plan
        self.chunks = chunks
        self.futures = futures
        self.pool = pool
        """The pool the futures were handed to (only that one is let go if it broke)."""
        self.next = 0
        """The first chunk not yet given back."""

    def __iter__(self) -> Runs:
        return self

    def _here(self, chunk: list[Sequence[Header]]) -> list[bytes]:
        return self.plan.many([k.key for k in self.signers.keys], chunk)

    def __next__(self) -> list[bytes]:
        chunks, i = self.chunks, self.next
        while i < len(chunks):
            try:
                run = self.futures[i].result() if self.futures else self._here(chunks[i])
            except cf.CancelledError:
                # cancelled by a shutdown elsewhere (the interpreter ending, a pool let
                # go): this chunk is signed here, the others stay with the workers
                run = self._here(chunks[i])
            except cf.BrokenExecutor:
                # a worker died (the OOM killer, a signal): the rest of this batch is
                # signed here, the next one by a new pool; nothing is lost, only slower
                log.warning("dkim: a signing worker died; a new pool is started")
                if self.pool is not None:
                    self.signers.discard(self.pool)
                self.futures = []
                continue
            i += 1
            # only chunks done without error join the run: one that failed is met alone,
            # above, with nothing of the run lost
            while self.futures and i < len(chunks) and _ok(self.futures[i]):
                run += self.futures[i].result()
                i += 1
            self.next = i
            return run
        self.close()
        raise StopIteration

    def close(self) -> None:
        for future in self.futures[self.next :]:
            future.cancel()
        self.next = len(self.chunks)


_pools: dict[tuple[DkimKey, ...], Signers] = {}
_pools_lock = threading.Lock()


def signers(keys: Sequence[DkimKey]) -> Signers:
    """The one pool of a daemon's keys (made at the first use, or by `warm`)."""
    with _pools_lock:
        found = _pools.get(tuple(keys))
        if found is None:
            found = _pools[tuple(keys)] = Signers(keys)
        return found


@atexit.register
def _close_all() -> None:
    """The workers joined before the interpreter tears its modules down (left to the
    garbage collector, the pool's clean-up then fails with a traceback)."""
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.close(wait=True)
