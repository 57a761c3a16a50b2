"""Several ingesters, one database, one mailbox (issue 13 item 4): a real Dovecot and a real
SQLite file or PostgreSQL database. One reads while the others stand by; each message goes
into the spool once; when the reader stops or is killed, a standby takes over and loses
nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.inbound.imap.session import ImapIngester
from haishin.inbound.imap.wire import message_key
from haishin.store.engine import open_store
from support import imapkit
from support.dovecot import Dovecot, wait_for
from support.imapkit import Spool, assert_once, mail, running, settings


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two engines on one database: what two daemons have."""
    a, b = open_store(db_url), open_store(db_url)
    yield a, b
    a.dispose()
    b.dispose()


def test_two_ingesters_take_each_message_once_and_a_standby_takes_over(
    dovecot: Dovecot, mailbox: str, spool: Spool, engines: tuple[sa.Engine, sa.Engine]
) -> None:
    first, during = [mail() for _ in range(20)], [mail() for _ in range(20)]
    dovecot.append(mailbox, *first)
    ingesters = [ImapIngester(settings(dovecot, mailbox), spool.store, e) for e in engines]
    stacks = [ExitStack() for _ in ingesters]
    feeder = threading.Thread(target=dovecot.append, args=(mailbox, *during))
    try:
        for stack, ingester in zip(stacks, ingesters, strict=True):
            stack.enter_context(running(ingester))
        feeder.start()  # mail keeps coming while both run
        wait_for(spool.has_all(first + during), timeout=20, what="every message")
        feeder.join()
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the mailbox to empty")
        assert_once(spool, first + during)

        def one_reader_one_standby() -> bool:
            return sorted(i.stats.activity for i in ingesters) == ["standby", "waiting"]

        wait_for(one_reader_one_standby, what="one reader, one standby")
        reader = next(i for i in ingesters if i.stats.activity == "waiting")
        standby = next(i for i in ingesters if i is not reader)
        assert (reader.stats.stored, standby.stats.stored, standby.stats.connects) == (40, 0, 0)

        stacks[ingesters.index(reader)].close()  # the reader's daemon stops
        after = [mail() for _ in range(5)]
        dovecot.append(mailbox, *after)
        wait_for(spool.has_all(after), what="the standby to take over")
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the mailbox to empty again")
    finally:
        if feeder.ident:
            feeder.join()
        for stack in stacks:
            stack.close()
    assert_once(spool, first + during + after)
    assert standby.stats.stored == 5


def test_a_killed_reader_is_replaced_and_nothing_is_stored_twice(
    dovecot: Dovecot, mailbox: str, spool: Spool, db_url: str, tmp_path: Path
) -> None:
    """Ingesters in processes of their own, as in two daemons: the reader is killed with
    SIGKILL while mail keeps arriving, and the one standing by reads the rest. At most the
    message being stored at the kill is offered twice, and the spool's key keeps it once."""
    open_store(db_url).dispose()  # migrated once, before two processes start at once
    ca = tmp_path / "ca.pem"
    dovecot.ca.cert_pem.write_to_path(str(ca))
    worker = [sys.executable, imapkit.__file__, dovecot.url(mailbox), db_url]
    worker += [str(spool.path), str(ca)]
    env = imapkit.worker_env()
    messages = [mail() for _ in range(60)]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs: list[subprocess.Popen[bytes]] = []
    feeder = threading.Thread(target=dovecot.append, args=(mailbox, *messages[20:]))
    try:
        dovecot.append(mailbox, *messages[:20])
        with logs[0].open("wb") as err:
            procs.append(subprocess.Popen(worker, env=env, stderr=err))
        wait_for(lambda: len(spool.keys()) > 0, timeout=20, what="the first to read")
        with logs[1].open("wb") as err:
            procs.append(subprocess.Popen(worker, env=env, stderr=err))
        wait_for(lambda: b"standing by" in logs[1].read_bytes(), what="the second to stand by")
        feeder.start()
        wait_for(lambda: len(spool.keys()) > 25, timeout=20, what="more progress")
        procs[0].send_signal(signal.SIGKILL)
        assert procs[0].wait(10) == -signal.SIGKILL
        feeder.join()
        wait_for(spool.has_all(messages), timeout=30, what="the standby to read the rest")
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the mailbox to empty")
        procs[1].terminate()  # SIGTERM: a clean stop
        assert procs[1].wait(10) == 0
    finally:
        if feeder.ident:
            feeder.join()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert sorted(spool.keys()) == sorted(message_key(m) for m in messages)
    assert sum(spool.offers.values()) - len(messages) <= 1
    assert b"Traceback" not in logs[0].read_bytes() + logs[1].read_bytes()
    assert b"connected" in logs[1].read_bytes()
