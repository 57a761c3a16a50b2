"""The sender task: claim due rows in batches, deliver, record each result.

4xx replies and connection failures are retried with exponential backoff for a bounded
number of attempts (then `failed`); 5xx replies are recorded as `bounced` (design.md
reliability promises: never a silent drop). One SMTP connection serves a whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import sqlalchemy as sa

from ..store import queue
from ..store.clock import utcnow
from . import maildir

log = logging.getLogger(__name__)

BATCH = 100

OnBounced = Callable[[sa.Connection, list[tuple[queue.Claimed, str]]], None]
"""Told of 5xx replies (row, reply) inside the transaction that records them: service.py
wires in the bounce score (delivery/bounce_record.py), which stands above this module."""
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")


@dataclass(frozen=True)
class SendSettings:
    smarthost: tuple[str, int] | None
    maildir: Path
    retry_base: float = 60.0  # seconds before the first retry; doubles each time
    retry_cap: float = 3600.0
    max_attempts: int = 30  # about a day and a half with the cap: then `failed`
    timeout: float = 30.0


def _retry(settings: SendSettings, row: queue.Claimed, error: str) -> queue.Result:
    if row.attempts + 1 >= settings.max_attempts:
        return queue.Result(row.id, queue.FAILED, error)
    delay = min(settings.retry_base * (2**row.attempts), settings.retry_cap)
    return queue.Result(row.id, queue.QUEUED, error, utcnow() + dt.timedelta(seconds=delay))


def _data(row: queue.Claimed) -> bytes:
    return (row.headers or b"") + row.raw


async def _send_smtp(settings: SendSettings, rows: list[queue.Claimed]) -> list[queue.Result]:
    assert settings.smarthost is not None
    host, port = settings.smarthost
    results: list[queue.Result] = []
    client = aiosmtplib.SMTP(hostname=host, port=port, timeout=settings.timeout, start_tls=False)
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return [_retry(settings, r, f"connect: {exc}") for r in rows]
    try:
        for i, row in enumerate(rows):
            try:
                await client.sendmail(row.mail_from, [row.rcpt], _data(row))
            except aiosmtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients[0].code, exc.recipients[0].message
                results.append(_classify(settings, row, code, text))
            except aiosmtplib.SMTPResponseException as exc:
                results.append(_classify(settings, row, exc.code, exc.message))
                if exc.code == 421:  # RFC 5321 §3.8: the server is closing
                    results += [_retry(settings, r, "421") for r in rows[i + 1 :]]
                    break
            except (aiosmtplib.SMTPException, OSError) as exc:
                # the connection broke: this and the rest are retried
                results += [_retry(settings, r, f"connection: {exc}") for r in rows[i:]]
                break
            else:
                results.append(queue.Result(row.id, queue.SENT))
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
    return results


def _classify(settings: SendSettings, row: queue.Claimed, code: int, text: str) -> queue.Result:
    error = f"{code} {text}"[:500]
    if 500 <= code < 600:
        return queue.Result(row.id, queue.BOUNCED, error)
    return _retry(settings, row, error)


def _send_maildir(settings: SendSettings, rows: list[queue.Claimed]) -> list[queue.Result]:
    maildir.ensure(settings.maildir)
    results = []
    for row in rows:
        maildir.deliver(settings.maildir, row.mail_from, row.rcpt, _data(row), sync_dir=False)
        results.append(queue.Result(row.id, queue.SENT))
    maildir.sync(settings.maildir)  # before the rows are marked sent
    return results


def _then(
    rows: list[queue.Claimed], results: list[queue.Result], on_bounced: OnBounced | None
) -> Callable[[sa.Connection], None] | None:
    by_id = {row.id: row for row in rows}
    bounced = [(by_id[r.id], r.error or "") for r in results if r.state == queue.BOUNCED]
    if on_bounced is None or not bounced:
        return None
    return lambda conn: on_bounced(conn, bounced)


async def send_batch(
    engine: sa.Engine, settings: SendSettings, on_bounced: OnBounced | None = None
) -> int:
    rows = await asyncio.to_thread(queue.claim, engine, BATCH)
    if not rows:
        return 0
    if settings.smarthost:
        results = await _send_smtp(settings, rows)
    else:
        results = await asyncio.to_thread(_send_maildir, settings, rows)
    await asyncio.to_thread(queue.settle, engine, results, _then(rows, results, on_bounced))
    for r in results:
        if r.state != queue.SENT:
            # a remote reply often quotes the address ("550 <a@b>: no such user")
            log.info(
                "outbound#%d: %s (%s)", r.id, r.state, _ADDRESS.sub("<address>", r.error or "")
            )
    return len(rows)


async def run(
    engine: sa.Engine,
    settings: SendSettings,
    wake: asyncio.Event,
    poll: float = 1.0,
    on_bounced: OnBounced | None = None,
) -> None:
    await asyncio.to_thread(queue.heartbeat, engine)
    await asyncio.to_thread(queue.recover, engine)
    loop = asyncio.get_running_loop()
    beat = loop.time()
    me = asyncio.current_task()
    while True:
        if loop.time() - beat >= queue.HEARTBEAT_EVERY.total_seconds():
            # alive, and on the lookout for rows a dead sender had claimed
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                await asyncio.to_thread(queue.heartbeat, engine)
                await asyncio.to_thread(queue.recover, engine)
            beat = loop.time()
        if me is not None and me.cancelling():
            # a library below (aiosmtplib, on a cancelled send) may swallow the
            # CancelledError; the stop request still stands
            raise asyncio.CancelledError
        wake.clear()
        try:
            sent = await send_batch(engine, settings, on_bounced)
        except sa.exc.SQLAlchemyError:
            log.exception("sender: database error; retrying")
            sent = 0
        if sent:
            continue
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
        # that arrives as the event is set, and the daemon then never stops (seen in tests)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll):
                await wake.wait()
