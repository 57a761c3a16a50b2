"""The daemon's handlers in process, for the cases that test what one handler does (issue 13
item 7): a migrated store (SQLite or PostgreSQL), the `Context` of a registry (the sample
one, or a copy a test edits and `reload`s as SIGHUP would), and the steps the daemon's tasks
take, each called once and synchronously:

- `deliver(raw, mail_from, rcpts)`: what the SMTP front end does (a spool row), then what
  the worker does (`router.worker.process_batch`) until nothing new is left;
- `release(now)`: the release task's pass (`posting.release.release_due`);
- `verify(dns)`: the DKIM verification task's pass over `authenticated` posts, through a
  given resolver (by default one with no server: any key lookup fails as temporary);
- `queued(rcpt)`: what the sender would send, read from the outbound queue (per-recipient
  headers and body, as the sender joins them), instead of waiting for a sink;
- `sendable(now)`: who the sender would send to at `now`, an outage (第9条) holding all
  but the kinds it lets through (outbound/pool.py `check_hold`);
- `refused(rcpt, reply)`: what the sender does when the smarthost refuses a recipient
  (the row settled as bounced, the reply scored in the same transaction);
- `web()`: the daemon's web application (`web.app.build`) served on a port from the OS
  from a thread, for as long as the block runs; `http(url, data)`: one request to it, as a
  citizen's or a sender's browser would send it.

Real store, real registry, real router; nothing is mocked. What needs the daemon itself
(sockets, signals, its log, its timing) stays in the end-to-end tests (support/helpers.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiohttp import web

from haishin import addresses
from haishin.bounces import alarm, record
from haishin.bounces.score import settings_of
from haishin.context import Context
from haishin.directory import Directory
from haishin.operations.metrics import Metrics
from haishin.operations.outages import sendable_kinds
from haishin.operations.status import snapshot
from haishin.posting import authenticated
from haishin.posting.dkim_verify import Addressed, verify
from haishin.posting.dnskeys import DnsSettings, KeyLookup
from haishin.posting.release import ReleaseSettings, release_due
from haishin.registry import load_valid
from haishin.router.worker import process_batch
from haishin.store import open_store, queue, spool
from haishin.store.schema import outbound, outbound_messages
from haishin.store.states import Intake, MessageKind, QueueState
from haishin.tokens import Keyring
from haishin.web.app import build
from support import helpers
from support.helpers import CONFIG

SECRET = b"test-secret-0123456789abcdef"  # the key helpers.start gives the daemon
KEYRING = Keyring(SECRET)
PUBLIC_URL = "http://127.0.0.1/"  # where the daemon's pages would be
NO_DNS = DnsSettings(nameservers=(("127.0.0.1", 9),), timeout=0.2, lifetime=0.5)
"""A resolver with no server behind it: every key lookup fails as temporary."""


@dataclass(frozen=True)
class Queued:
    """One outbound row: what the sender would hand the smarthost for one recipient."""

    id: int
    mail_from: str
    rcpt: str
    state: QueueState
    kind: MessageKind
    raw: bytes
    """The per-recipient headers and the shared body, as the sender joins them."""

    @property
    def msg(self) -> EmailMessage:
        m = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(m, EmailMessage)
        return m

    @property
    def subject(self) -> str:
        return str(self.msg["Subject"])

    @property
    def body(self) -> str:
        part = self.msg.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


class InProcess:
    def __init__(self, engine: sa.Engine, config: Path = CONFIG) -> None:
        self.engine = engine
        self.config = config
        self.ctx = self._load()

    def _load(self) -> Context:
        return Context(Directory(load_valid(self.config), KEYRING), KEYRING, PUBLIC_URL)

    def reload(self) -> None:
        """The registry read again, as the daemon does on SIGHUP."""
        self.ctx = self._load()

    def deliver(
        self, raw: bytes, mail_from: str, rcpts: list[str], source: Intake = Intake.SMTP
    ) -> int:
        """Spool one message as the front end does, then run the worker until the spool
        holds nothing new; returns the message's spool id."""
        spool_id = spool.put(self.engine, raw, mail_from, rcpts, source)
        self.process()
        return spool_id

    def process(self) -> int:
        """The worker's passes until nothing new is left; how many rows were done."""
        done = 0
        while rows := spool.fetch_new(self.engine, 32):
            done += process_batch(self.engine, self.ctx, rows)
        return done

    def release(self, now: dt.datetime | None = None) -> int:
        """One pass of the release task; how many posts went out."""
        return release_due(self.engine, self.ctx, ReleaseSettings(), now=now)

    def verify(self, dns: DnsSettings = NO_DNS) -> int:
        """One pass of the DKIM verification task (posting/authenticated.py `run`), its
        keys looked up through `dns`; how many posts were decided."""
        keys = KeyLookup(dns)
        domain = self.ctx.service.mail_domain
        decided = 0
        for post_id, sender, channel, raw in authenticated.pending(self.engine):
            to = Addressed(self.ctx.address(channel, addresses.POST), own_domain=domain)
            verification = asyncio.run(verify(raw, sender, keys, to))
            decided += authenticated.conclude(self.engine, self.ctx, post_id, verification)
        return decided

    def queued(self, rcpt: str | None = None, *, kind: MessageKind | None = None) -> list[Queued]:
        """The outbound rows (to `rcpt`, of `kind`), oldest first, in any state."""
        query = (
            sa.select(
                outbound.c.id,
                outbound.c.mail_from,
                outbound.c.rcpt,
                outbound.c.state,
                outbound_messages.c.kind,
                outbound.c.headers,
                outbound_messages.c.raw,
            )
            .join(outbound_messages, outbound_messages.c.id == outbound.c.message_id)
            .order_by(outbound.c.id)
        )
        if rcpt is not None:
            query = query.where(outbound.c.rcpt == rcpt)
        if kind is not None:
            query = query.where(outbound_messages.c.kind == kind)
        with self.engine.connect() as conn:
            return [
                Queued(
                    r.id,
                    r.mail_from,
                    r.rcpt,
                    QueueState(r.state),
                    MessageKind(r.kind),
                    bytes(r.headers or b"") + bytes(r.raw),
                )
                for r in conn.execute(query)
            ]

    def mail(self, rcpt: str, fragment: str) -> list[Queued]:
        """What is queued to `rcpt` with `fragment` in its subject."""
        return [q for q in self.queued(rcpt) if fragment in q.subject]

    def sendable(self, now: dt.datetime) -> list[str]:
        """The recipients of the rows the sender would claim at `now`, with the kinds the
        registry's outages let through then; the rows go back to the queue untried."""
        kinds = sendable_kinds(self.ctx.registry, now)
        claimed = queue.claim(self.engine, 1000, now=now, kinds=kinds)
        queue.settle(self.engine, [queue.Result.untried(c.id) for c in claimed])
        return sorted(c.rcpt for c in claimed)

    def refused(self, rcpt: str, reply: str) -> None:
        """The smarthost refuses `rcpt` with `reply` ("550 5.1.1 ..."): its queued row is
        settled as bounced and the reply scored in the same transaction, as the sender does
        with a 5xx (outbound/sender.py) through the daemon's `_on_bounced`. The other due
        rows go back untried."""
        claimed = queue.claim(self.engine, 1000)
        [row] = [c for c in claimed if c.rcpt == rcpt]
        back = [queue.Result.untried(c.id) for c in claimed if c.id != row.id]
        settings = settings_of(self.ctx.service)
        queue.settle(
            self.engine,
            [queue.Result(row.id, QueueState.BOUNCED, reply[:500]), *back],
            then=lambda conn: record.from_smtp(
                conn, [(row, reply)], redact=KEYRING.redact, settings=settings
            ),
        )

    @contextmanager
    def web(self, static: Path | None = None) -> Iterator[tuple[str, int]]:
        """The daemon's web application (`web.app.build`, with its metrics) served as the
        daemon serves it (an AppRunner without access log) on 127.0.0.1 and a port from the
        OS, from a thread of its own; its address. `static`: the built site it serves
        (`serve --static`)."""
        engine = self.engine
        metrics = Metrics(  # as the daemon makes them (service.py)
            lambda: snapshot(engine),
            refusals=lambda: alarm.refusal_counts(
                engine, settings_of(self.ctx.service).alarm_reasons
            ),
        )
        app = build(engine, lambda: self.ctx, lambda: None, static, metrics)
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app, access_log=None)
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert started.wait(helpers.WAIT), "the web application did not start"
        try:
            host, port = runner.addresses[0][:2]
            yield str(host), int(port)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(helpers.WAIT)
            loop.close()

    def http(self, url: str, data: bytes | None = None) -> tuple[int, str]:
        """GET `url` (POST `data`, a form) from the daemon's web application; status, page."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        with self.web() as (host, port):
            req = urllib.request.Request(
                f"http://{host}:{port}{path}",
                data=data,
                method="POST" if data is not None else "GET",
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()


@contextmanager
def inprocess(db_url: str, config: Path = CONFIG) -> Iterator[InProcess]:
    """A migrated store at `db_url` and the handlers on it."""
    engine = open_store(db_url)
    try:
        yield InProcess(engine, config)
    finally:
        engine.dispose()
