"""Wire the daemon: one asyncio TaskGroup for SMTP/LMTP, HTTP, the worker and the sender.

SIGTERM and SIGINT stop it gracefully: the listeners close first (no new mail is taken),
the tasks are cancelled, and whatever was accepted stays in the database for the next
start (第8条: nothing lost across restarts). SIGHUP reloads the registry; a registry that
does not validate is refused and the last good one stays (design.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from aiohttp import web

from .bounces import alarm as bounce_alarm
from .bounces import digest as bounce_digest
from .bounces import record as bounce_record
from .bounces.score import settings_of
from .context import Context
from .directory import Directory
from .errors import HaishinError
from .inbound import sessions, smtp
from .inbound.envelope import envelope
from .inbound.imap.session import ImapIngester
from .inbound.imap.settings import ImapSettings
from .inbound.writer import SpoolWriter
from .operations import announce, outages
from .operations.daemons import daemons
from .operations.metrics import Metrics
from .operations.report import send as monthly_report
from .operations.status import snapshot
from .operations.sync import notify_refusal
from .outbound import sender
from .outbound.sender import SendSettings
from .posting import authenticated, release
from .posting.dnskeys import DnsSettings, KeyLookup
from .posting.release import ReleaseSettings
from .registry import Registry, load_valid
from .router import worker
from .store import open_store
from .store.queue import Claimed
from .store.retention import purge
from .store.spool import Spool
from .store.states import Intake
from .supervision import configure_logging as configure_logging
from .supervision import supervised
from .tokens import Keyring

log = logging.getLogger("haishin")


@dataclass(frozen=True)
class Settings:
    """Everything `serve` needs, read once at the edge (style.md 7)."""

    config: Path
    db_url: str
    smtp: tuple[str, int]
    http: tuple[str, int]
    keyring: Keyring
    send: SendSettings
    lmtp: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    public_url: str | None = None
    static: Path | None = None
    hostname: str = "localhost"
    worker_poll: float = 0.5
    release: ReleaseSettings = field(default_factory=ReleaseSettings)
    send_poll: float = 1.0
    """Seconds between looks at the outbound queue when nothing woke the sender."""
    housekeeping_after: float = 600.0
    """Seconds after start before the first purge: not while a restarted daemon catches up."""
    imap: ImapSettings | None = None
    """IMAP ingestion into the same spool (`--imap URL`), beside SMTP/LMTP."""
    dns: DnsSettings = field(default_factory=DnsSettings)
    """The resolver for DKIM keys (`--dns HOST:PORT`; default: the system's)."""
    sessions: sessions.SessionLimits = field(default_factory=sessions.SessionLimits)
    """Concurrent SMTP/LMTP sessions per client address and overall (inbound/sessions.py)."""
    outage_poll: float = announce.CHECK_EVERY  # seconds between passes of the 第9条 notices


T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the daemon's coroutine on uvloop (libuv) where it is installed: the same asyncio
    with a tenth less CPU per message sent (bench/fanout.py), else on asyncio's own loop.
    Tests that run a Daemon inside their own asyncio.run keep asyncio's loop, so both are
    exercised."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without it (pyproject.toml)
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise HaishinError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass
class Daemon:
    settings: Settings
    ready: Callable[[dict[str, tuple[str, int]]], None] = lambda bound: None
    signals: bool = True
    """Install SIGTERM/SIGINT/SIGHUP handlers (only possible in the main thread)."""
    _ctx: Context | None = field(default=None, init=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _imap_spool: Spool | None = field(default=None, init=False)
    _engine: Any = field(default=None, init=False)
    metrics: Metrics | None = field(default=None, init=False)
    _kept: Any = field(default=None, init=False)
    _reloading: Any = field(default=None, init=False)

    def context(self) -> Context:
        assert self._ctx is not None
        return self._ctx

    def directory(self) -> Directory:
        return self.context().directory

    def _registry(self) -> Registry:
        return self.context().registry

    def _load(self, public_url: str) -> Context:
        registry = load_valid(self.settings.config)
        return Context(
            Directory(registry, self.settings.keyring), self.settings.keyring, public_url
        )

    def reload(self) -> None:
        """SIGHUP: reading and validating the registry is file work, done in a thread."""
        task = asyncio.get_running_loop().create_task(self._reload())
        self._reloading = task  # keep a reference until it is done

    async def _reload(self) -> None:
        try:
            self._ctx = await asyncio.to_thread(self._load, self.context().public_url)
            log.info("registry reloaded from %s", self.settings.config)
            if self.metrics:
                self.metrics.reloads.labels("ok").inc()
        except HaishinError as exc:
            log.error("registry reload refused, keeping the last good one: %s", exc)
            if self.metrics:
                self.metrics.reloads.labels("refused").inc()
            if self._engine is not None:
                # the 統括管理者 is told, through the queue (never lost), not only a log line
                problems = [str(p) for p in getattr(exc, "problems", [])] or [str(exc)]
                await asyncio.to_thread(
                    refused_reload_notice, self._engine, self.context(), problems
                )

    def _on_bounced(self, conn: sa.Connection, failures: list[tuple[Claimed, str]]) -> None:
        """5xx replies at send time: scored as bounces, by the registry's current rules."""
        bounce_record.from_smtp(
            conn,
            failures,
            redact=self.settings.keyring.redact,
            settings=settings_of(self.context().service),
        )

    def stop(self) -> None:
        self._stop.set()

    def imap_store(self, raw: bytes) -> None:
        """The IMAP ingester's `store(raw)` (it runs in its own thread): derive the
        envelope from the headers, commit to the spool (idempotent on the content hash),
        wake the worker. Raises if the commit failed, so the message stays on the server."""
        assert self._imap_spool is not None, "the daemon is not running"
        mail_from, rcpts = envelope(raw, self.directory())
        self._imap_spool.put(raw, mail_from, rcpts, key=hashlib.sha256(raw).hexdigest())

    async def run(self) -> None:
        s = self.settings
        engine = await asyncio.to_thread(open_store, s.db_url)
        self._engine = engine
        self.metrics = Metrics(
            lambda: snapshot(engine),
            refusals=lambda: bounce_alarm.refusal_counts(
                engine, settings_of(self.context().service).alarm_reasons
            ),
            daemons=lambda: daemons(engine),
        )
        self._ctx = self._load(s.public_url or "")
        loop = asyncio.get_running_loop()
        work = asyncio.Event()
        outgoing = asyncio.Event()
        writer = SpoolWriter(engine, work.set)

        def wake_from_thread() -> None:
            loop.call_soon_threadsafe(work.set)

        self._imap_spool = Spool(engine, Intake.IMAP, wake_from_thread)
        limits = self.context().service.limits
        tls = None
        if s.tls_cert and s.tls_key:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(s.tls_cert, s.tls_key)
        handler = smtp.Handler(
            self.directory,
            writer.store_for(Intake.LMTP if s.lmtp else Intake.SMTP),
            Intake.LMTP if s.lmtp else Intake.SMTP,
            s.keyring.redact,
        )
        # the soft file limit up to the hard one, and the session cap below it: accept()
        # must never fail for want of a descriptor (inbound/sessions.py)
        caps = sessions.fit(s.sessions, sessions.raise_fd_limit())
        make = smtp.factory(
            handler,
            lmtp=s.lmtp,
            size_limit=limits.max_message_kb * 1024,
            hostname=s.hostname,
            tls=tls,
            capped=sessions.Sessions(caps),
        )
        smtp_server = await smtp.serve(make, *s.smtp)
        smtp_bound = smtp_server.sockets[0].getsockname()[:2]

        app = self._web_app(engine, outgoing)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, s.http[0], s.http[1])
        await site.start()
        http_bound = tuple(runner.addresses[0][:2])
        if not s.public_url:
            self._ctx = Context(
                self.directory(), s.keyring, f"http://{http_bound[0]}:{http_bound[1]}/"
            )

        if self.signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self.reload)

        self.ready({"smtp": smtp_bound, "http": http_bound})
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(supervised("spool writer", writer.run)),
                    tg.create_task(
                        supervised(
                            "worker",
                            lambda: worker.run(engine, self.context, work, outgoing, s.worker_poll),
                        )
                    ),
                    tg.create_task(
                        supervised(
                            "sender",
                            lambda: sender.run(
                                engine,
                                s.send,
                                outgoing,
                                s.send_poll,
                                lambda: self.context().service.delivery,
                                on_bounced=self._on_bounced,
                                # 第9条: during an outage only its notices and alarms
                                sendable=lambda: outages.sendable_kinds(self.context().registry),
                            ),
                        )
                    ),
                    # the weekly bounce digest to each channel's 情報管理者
                    tg.create_task(
                        supervised(
                            "bounce digest",
                            lambda: bounce_digest.run(engine, self._registry, outgoing.set),
                        )
                    ),
                    # 第9条: the notice of a planned stop and the report of an emergency one
                    tg.create_task(
                        supervised(
                            "outage notices",
                            lambda: announce.run(
                                engine, self._registry, outgoing.set, s.outage_poll
                            ),
                        )
                    ),
                    # the monthly report (1st of the month, JST) and the dormancy
                    # reminders (第5条4), each mail once across daemons and restarts
                    tg.create_task(
                        supervised(
                            "monthly report",
                            lambda: monthly_report.run(
                                engine, lambda: self.context().registry, outgoing.set
                            ),
                        )
                    ),
                    tg.create_task(
                        supervised(
                            "release",
                            lambda: release.run(engine, self.context, s.release, outgoing.set),
                        )
                    ),
                ]
                tasks.append(
                    tg.create_task(supervised("housekeeping", lambda: self._housekeeping(engine)))
                )
                # `authenticated` posts: the daemon's own DKIM verification, off the worker
                keys = KeyLookup(s.dns)
                tasks.append(
                    tg.create_task(
                        supervised(
                            "dkim verification",
                            lambda: authenticated.run(
                                engine, self.context, keys, outgoing.set, s.worker_poll
                            ),
                        )
                    )
                )
                if s.imap is not None:
                    ingester = ImapIngester(s.imap, self.imap_store, engine)
                    tasks.append(
                        tg.create_task(supervised("imap", lambda: ingester.run(self._stop)))
                    )
                await self._stop.wait()
                log.info("stopping: no new connections; finishing tasks")
                smtp_server.close()
                for t in tasks:
                    t.cancel()
            log.debug("tasks stopped")
        finally:
            smtp_server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await smtp_server.wait_closed()
            log.debug("listener closed")
            await runner.cleanup()
            log.debug("web stopped")
            engine.dispose()
            log.info("stopped")
            if self.signals:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)

    async def _housekeeping(self, engine: Any) -> None:
        """Once a day: personal data past its retention is removed (第4条(3))."""
        while True:
            try:
                first = self.settings.housekeeping_after
                async with asyncio.timeout(first if self._kept is None else HOUSEKEEPING_EVERY):
                    await self._stop.wait()
                return
            except TimeoutError:
                pass
            limits = self.context().service.limits
            done = await asyncio.to_thread(purge, engine, self.settings.keyring.key, limits)
            self._kept = done
            log.info("housekeeping: purged %s", done)

    def _web_app(self, engine: Any, outgoing: asyncio.Event) -> web.Application:
        from .web.app import build

        assert self.metrics is not None
        return build(engine, self.context, outgoing.set, self.settings.static, self.metrics)


def refused_reload_notice(engine: Any, ctx: Context, problems: list[str]) -> None:
    try:
        notify_refusal(ctx.service, engine, "SIGHUP による再読み込み", problems)
    except Exception:  # the refusal is logged already; a failed notice must not kill a thread
        log.exception("could not queue the refused-reload notice")


HOUSEKEEPING_EVERY = 86_400.0
