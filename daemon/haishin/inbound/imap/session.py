"""IMAP ingestion (`--imap URL`): take mail from a mailbox into the inbound spool, each once.

Per message, in UID order (RFC 3501 §2.3.1.1: UIDs only ascend within one UIDVALIDITY):

    UID FETCH BODY.PEEK[]  ->  store(raw)  ->  commit (key, UID) to the store  ->  mark

and only then is the message marked on the server: MOVEd to a processed folder when one is
configured (RFC 6851), otherwise flagged \\Seen \\Deleted and removed with UID EXPUNGE
(RFC 4315 §2.1, which touches only our message, not another client's \\Deleted ones).
Deleting is the default because the spool already holds the durable copy (design.md: one
spool for SMTP, LMTP and IMAP) and an empty INBOX keeps every SEARCH cheap; a processed
folder is there for operators who want a server-side trail.

What a crash leaves behind, and how the next session repairs it:

- after store() and before the state commit: the message is still on the server and is
  offered again. This window (and a lost reader lock, below) is the only place a message is
  offered twice; the spool makes it harmless by storing idempotently on `message_key(raw)`
  (see `Store`).
- after the commit and before marking: the message's key is recorded, so the next session
  marks it without offering it again.
- after \\Deleted and before EXPUNGE: SEARCH NOT DELETED skips it; the session start expunges
  our own leftovers (UIDs up to the last recorded one).
- UIDVALIDITY changed (mailbox deleted and recreated, restored, migrated): UIDs mean nothing
  any more, so the last UID is reset and the mailbox rescanned; whatever is still there and
  was already stored is recognised by its key and marked, not stored again.

The state (UIDVALIDITY, last UID, the keys of stored messages) lives in the store's
tables (store/imap_state.py), so daemons that share a database share it. They may all be
given the same mailbox: one reads it while it holds the mailbox's reader lock, the others
stand by (`standby_interval`) and take over when it stops or dies. A reader checks that the
lock is still its own before it stores each message; if its database session was lost in
between, the message may be offered by the next reader too, and the spool's key absorbs it,
as after a crash. A former state file (`--imap-state`) is imported once before the first
session, and renamed.

imapclient is blocking, so the session and every database call of the ingester run in one
dedicated worker thread; `run()` is the asyncio entry point the daemon's TaskGroup
supervises. Every wait in the worker is at most `IDLE_TICK` seconds, `standby_interval` or
a socket timeout, so a stop takes effect promptly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]

from ...errors import HaishinError
from ...store.imap_state import (
    Check,
    ImapState,
    MailboxBusy,
    ReaderLost,
    StateFileError,
    import_state_file,
    reader_lock,
)
from . import wire
from .settings import ImapConfigError, ImapSettings

log = logging.getLogger(__name__)

# imapclient logs the whole protocol, message bodies included, at DEBUG: addresses in clear.
# 第4条3 (security of registration data) outranks protocol traces.
logging.getLogger("imapclient").setLevel(logging.INFO)

IDLE_TICK = 0.25
"""Longest single wait inside IDLE: how late a stop request can be noticed."""

Store = Callable[[bytes], None]
"""Durably store one raw RFC 5322 message, or raise. Called in the worker thread, before the
message is marked on the server. After a crash at the wrong instant the same bytes can come
again: a store should be idempotent on `message_key(raw)` (a UNIQUE column in the spool)."""


class StoreFailed(HaishinError):
    """store() raised: the message stays unmarked on the server and is offered again later."""


@dataclass
class ImapStats:
    """Counters for health and metrics; written by the worker thread only."""

    stored: int = 0
    duplicates: int = 0
    connects: int = 0
    failures: int = 0
    mode: str = ""
    """"idle" or "poll" once a session has selected the mailbox."""
    activity: str = "starting"
    """What the worker does now: connecting, fetching, waiting (for mail), backoff, standby
    (another ingester reads the mailbox), stopped."""
    last_error: str = ""


# Failures that end a session and are retried after a backoff; anything else is a bug and
# goes up to the daemon's supervisor. imaplib's abort and readonly derive from its error.
_RETRYABLE = (
    IMAPClientError,
    OSError,
    ImapConfigError,
    wire.SessionTrouble,
    StoreFailed,
    ReaderLost,
    StateFileError,
    # the database away or busy: nothing is fetched without the state
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
)


class ImapIngester:
    """Reads one mailbox into `store`, each message once; `run()` until the stop event.

    Wiring, in the daemon::

        settings = ImapSettings.from_url(url)
        tg.create_task(ImapIngester(settings, store, engine).run(stop))

    where `store(raw)` (the daemon's `Daemon.imap_store`) puts the message in the spool with
    the envelope of `inbound.envelope` and a content hash as its unique key, and returns
    once that is committed, and `engine` is the store's, which holds the state.
    """

    def __init__(self, settings: ImapSettings, store: Store, engine: sa.Engine) -> None:
        self.settings = settings
        self._store = store
        self._engine = engine
        self.stats = ImapStats()
        self._backoff = settings.backoff_initial
        self._state_file = settings.state_file

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest until `stop` is set; returns only when no store() call is in flight."""
        halt = threading.Event()
        loop = asyncio.get_running_loop()
        # A thread of its own, not the default executor, which SQLAlchemy work shares.
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="haishin-imap")
        worker = loop.run_in_executor(pool, self.run_blocking, halt)
        stopper = asyncio.ensure_future(stop.wait())
        either: set[asyncio.Future[Any]] = {worker, stopper}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.set()
            stopper.cancel()
            pool.shutdown(wait=False)
            await worker

    def run_blocking(self, halt: threading.Event) -> None:
        """The worker: sessions with reconnects and backoff until `halt` is set."""
        state = ImapState(self._engine, self.settings.endpoint.state_id)
        try:
            while not halt.is_set():
                try:
                    self._import_state_file()
                    with reader_lock(self._engine, state.mailbox) as reader:
                        self._session(state, reader, halt)
                except MailboxBusy:
                    self._stand_by(halt)
                    continue
                except _RETRYABLE as exc:
                    self._failed(exc)
                if not halt.is_set():
                    self.stats.activity = "backoff"
                    # Full jitter keeps several daemons from reconnecting in step.
                    halt.wait(self._backoff * random.uniform(0.5, 1.0))
                    self._backoff = min(self._backoff * 2, self.settings.backoff_max)
        finally:
            self.stats.activity = "stopped"

    def _import_state_file(self) -> None:
        """Before the first session: a former `--imap-state` file's seen-set and UIDs into
        the store, so that an upgrade offers nothing again (store/imap_state.py)."""
        if self._state_file is None:
            return
        done = import_state_file(self._engine, self._state_file)
        if done is not None:
            log.info(
                "IMAP: took %d mailbox(es) and %d key(s) from %s into the store%s",
                done.mailboxes,
                done.keys,
                self._state_file,
                f"; the file is now {done.moved_to.name}" if done.moved_to else "",
            )
        self._state_file = None

    def _stand_by(self, halt: threading.Event) -> None:
        if self.stats.activity != "standby":
            log.info(
                "IMAP %s: another ingester reads this mailbox; standing by",
                self.settings.endpoint,
            )
        self.stats.activity = "standby"
        halt.wait(self.settings.standby_interval)

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        cause = exc.__cause__ if isinstance(exc, StoreFailed) and exc.__cause__ else exc
        if isinstance(cause, sa.exc.DBAPIError) and cause.orig is not None:
            cause = cause.orig  # the driver's own words, without SQLAlchemy's help links
        # an address in it (a LOGIN failure) is marked by the log filter (redact.py)
        self.stats.last_error = f"{type(cause).__name__}: {cause}"
        log.warning(
            "IMAP %s: %s%s; retrying within %.1fs",
            self.settings.endpoint,
            "store failed, message left on the server: " if isinstance(exc, StoreFailed) else "",
            self.stats.last_error,
            self._backoff,
        )

    def _session(self, state: ImapState, reader: Check, halt: threading.Event) -> None:
        s, ep = self.settings, self.settings.endpoint
        self.stats.activity = "connecting"
        state.prune(dt.timedelta(days=s.dedupe_days))
        client = wire.connect(self.settings)
        try:
            self.stats.connects += 1
            if s.processed_folder and not client.folder_exists(s.processed_folder):
                client.create_folder(s.processed_folder)
            selected = client.select_folder(ep.mailbox)
            if state.open_mailbox(int(selected[b"UIDVALIDITY"])):
                log.warning(
                    "IMAP %s: UIDVALIDITY changed; rescanning the mailbox, duplicates are "
                    "recognised by content",
                    ep,
                )
            self._expunge_leftovers(client, state)
            idle = s.use_idle and client.has_capability("IDLE")
            self.stats.mode = "idle" if idle else "poll"
            log.info("IMAP %s: connected, %s mode", ep, self.stats.mode)
            while not halt.is_set():
                self.stats.activity = "fetching"
                while self._drain(client, state, reader, halt) and not halt.is_set():
                    pass  # new mail was announced while we worked: look again before waiting
                self._backoff = s.backoff_initial  # a whole pass worked: the link is healthy
                if halt.is_set():
                    break
                self.stats.activity = "waiting"
                if idle:
                    self._wait_idle(client, halt)
                else:
                    halt.wait(s.poll_interval)
            with contextlib.suppress(*_RETRYABLE):
                client.logout()
        finally:
            wire.close(client)

    def _drain(self, client: Any, state: ImapState, reader: Check, halt: threading.Event) -> bool:
        """Take every message in the mailbox; True when more may have arrived meanwhile.

        A pass that took a message always looks once more: another client may have taken
        back a \\Deleted while we marked, and Dovecot reports that flag change neither in
        the answers to our marking commands nor in the IDLE that follows, so the message
        would wait for the next renewal of IDLE (idle_renew, minutes)."""
        took = False
        # RFC 3501 §6.1.2: NOOP lets the server announce new mail before we SEARCH.
        wire.check_untagged(client.noop()[1])
        wire.announced(client)  # what NOOP announced, SEARCH will see
        for uid in sorted(client.search(["NOT", "DELETED"])):
            if halt.is_set():
                return False
            # Every message is judged by its content, even one below the last UID: a UID
            # alone cannot tell "stored, then the session ended before marking it" from
            # "flagged \Deleted by another client, later restored", and only the first may
            # be marked without storing it.
            fetched = client.fetch([uid], ["BODY.PEEK[]"])  # PEEK: no \Seen until stored
            raw = fetched.get(uid, {}).get(b"BODY[]")
            if raw is None:
                # Expunged by another client meanwhile, or unreadable: not marked, so it is
                # looked at again on the next pass if it is still there.
                log.warning(
                    "IMAP %s: UID %d gave no body; left on the server", self.settings.endpoint, uid
                )
                continue
            key = wire.message_key(raw)
            if state.has(key):
                self.stats.duplicates += 1
                state.record(uid, None)
            else:
                reader()  # still the one reader: else another may be storing this one too
                try:
                    self._store(raw)
                except Exception as exc:
                    raise StoreFailed(f"UID {uid}") from exc
                state.record(uid, key)
                self.stats.stored += 1
            self._mark(client, uid)
            took = True
        return wire.announced(client) or took

    def _mark(self, client: Any, uid: int) -> None:
        folder = self.settings.processed_folder
        if folder:
            if client.has_capability("MOVE"):
                client.move([uid], folder)  # RFC 6851: copy and expunge in one step
                return
            client.copy([uid], folder)
        client.add_flags([uid], [b"\\Seen", b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            # Without RFC 4315 only a plain EXPUNGE exists; it also removes messages another
            # client flagged \Deleted, which is what that flag asks for anyway.
            client.expunge()

    def _expunge_leftovers(self, client: Any, state: ImapState) -> None:
        """Remove our messages flagged \\Deleted by a session that ended before EXPUNGE."""
        if not (state.last_uid and client.has_capability("UIDPLUS")):
            return
        flagged = client.search(["DELETED", "UID", f"1:{state.last_uid}"])
        if not flagged:
            return
        # Only those we stored: another client's \Deleted messages are its business. These
        # are few (a session ended between STORE and EXPUNGE), so fetching them costs little.
        bodies = client.fetch(flagged, ["BODY.PEEK[]"])
        ours = [
            u
            for u, d in bodies.items()
            if b"BODY[]" in d and state.has(wire.message_key(d[b"BODY[]"]))
        ]
        if ours:
            client.uid_expunge(ours)

    def _wait_idle(self, client: Any, halt: threading.Event) -> None:
        """IDLE (RFC 2177) until new mail, a stop, or the renew interval."""
        client.idle()
        started = time.monotonic()
        while not halt.is_set() and time.monotonic() - started < self.settings.idle_renew:
            if wire.buffered(client, self.settings.timeout):
                break  # news already read along with an earlier line: DONE returns it
            tick = time.monotonic()
            responses = client.idle_check(timeout=IDLE_TICK)
            wire.check_untagged(responses)
            if any(not (isinstance(r[0], bytes) and r[0] == b"OK") for r in responses):
                break  # EXISTS, EXPUNGE, FETCH or BYE: go and look ("OK Still here" is not news)
            if not responses and time.monotonic() - tick < IDLE_TICK / 2:
                # The socket was readable but gave no line: imapclient swallows EOF here.
                # DONE below then fails and the session reconnects.
                break
        client.idle_done()
