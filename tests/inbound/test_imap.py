"""IMAP ingestion against a real Dovecot: each message stored once, whatever happens.

Each test reads its own mailbox (folder) on one Dovecot started for the session; messages
arrive by APPEND, or as maildir files while the server is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from haishin.inbound.imap.session import ImapIngester
from haishin.inbound.imap.settings import (
    ImapConfigError,
    ImapEndpoint,
    ImapSettings,
    is_loopback,
    read_password,
)
from haishin.inbound.imap.wire import message_key
from support import imapkit
from support.dovecot import PASSWORD, USER, Dovecot, wait_for
from support.imapkit import Spool, assert_once, folders, mail, running, settings

# -- with a server ------------------------------------------------------------------------


def test_ingests_each_message_once_and_empties_the_mailbox(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    before = [mail() for _ in range(5)]
    dovecot.append(mailbox, *before)
    with running(ImapIngester(settings(dovecot, mailbox), spool.store, state_db)) as ing:
        wait_for(spool.has_all(before), what="the first five")
        after = [mail() for _ in range(3)]
        dovecot.append(mailbox, *after)
        wait_for(spool.has_all(before + after), what="three more")
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the mailbox to empty")
    assert_once(spool, before + after)
    assert spool.keys()[:5] == [message_key(m) for m in before], "UID order"
    assert (ing.stats.stored, ing.stats.duplicates, ing.stats.mode) == (8, 0, "idle")


def test_idle_wakes_promptly(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    # A poll interval of an hour: only IDLE can bring the message in within the wait.
    s = settings(dovecot, mailbox, poll_interval=3600.0)
    with running(ImapIngester(s, spool.store, state_db)) as ing:
        wait_for(lambda: ing.stats.mode == "idle", what="IDLE")
        for _ in range(3):
            m = mail()
            sent = time.monotonic()
            dovecot.append(mailbox, m)
            wait_for(spool.has_all([m]), timeout=3.0, what="IDLE to report the message")
            latency = time.monotonic() - sent
            assert latency < 3.0
    print(f"IDLE latency {latency * 1000:.0f} ms")


def test_mail_arriving_between_search_and_idle_is_not_left_waiting(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    """The two races at the edge of IDLE: mail announced at the end of a command whose
    result missed it, and mail announced together with IDLE's "+ idling"."""
    during_drain, before_idle = mail(), mail()

    class Racing(ImapIngester):
        def _wait_idle(self, client: object, halt: threading.Event) -> None:
            # Only once the first race is won, so that one cannot mask the other.
            if spool.has_all([during_drain])() and not spool.has_all([before_idle])():
                dovecot.append(mailbox, before_idle)  # after the last SEARCH, before IDLE
            super()._wait_idle(client, halt)

    def store(raw: bytes) -> None:
        spool.store(raw)
        if message_key(raw) == message_key(first):
            dovecot.append(mailbox, during_drain)  # while FETCH and STORE run

    first = mail()
    dovecot.append(mailbox, first)
    s = settings(dovecot, mailbox, poll_interval=3600.0, idle_renew=3600.0)
    with running(Racing(s, store, state_db)):
        wait_for(spool.has_all([first, during_drain, before_idle]), timeout=5.0)
    assert_once(spool, [first, during_drain, before_idle])


def test_polls_when_idle_is_disabled(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    s = settings(dovecot, mailbox, use_idle=False, poll_interval=0.2)
    with running(ImapIngester(s, spool.store, state_db)) as ing:
        wait_for(lambda: ing.stats.mode == "poll", what="polling")
        messages = [mail() for _ in range(3)]
        dovecot.append(mailbox, *messages)
        wait_for(spool.has_all(messages), what="a poll")
    assert_once(spool, messages)


def test_survives_a_dovecot_restart(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    first, while_down, after = [mail() for _ in range(3)], [mail() for _ in range(3)], []
    with running(ImapIngester(settings(dovecot, mailbox), spool.store, state_db)) as ing:
        dovecot.append(mailbox, *first)
        wait_for(spool.has_all(first), what="messages before the restart")
        dovecot.stop()
        for m in while_down:  # the MTA keeps delivering while IMAP is down
            dovecot.deliver_maildir(mailbox, m)
        wait_for(lambda: ing.stats.failures >= 1, what="the ingester to notice")
        dovecot.start()
        after = [mail() for _ in range(3)]
        dovecot.append(mailbox, *after)
        wait_for(spool.has_all(first + while_down + after), what="all after the restart")
    assert_once(spool, first + while_down + after)
    assert ing.stats.connects >= 2
    assert dovecot.uids(mailbox) == []


def test_restart_of_the_ingester_resumes_from_its_state(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    s = settings(dovecot, mailbox)
    first = [mail() for _ in range(3)]
    dovecot.append(mailbox, *first)
    with running(ImapIngester(s, spool.store, state_db)):
        wait_for(spool.has_all(first))
    later = [mail() for _ in range(3)]
    dovecot.append(mailbox, *later)
    with running(ImapIngester(s, spool.store, state_db)) as ing:
        wait_for(spool.has_all(first + later))
    assert_once(spool, first + later)
    assert ing.stats.stored == 3


def test_store_failure_leaves_the_message_and_it_is_offered_again(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    messages = [mail() for _ in range(4)]
    crashing = message_key(messages[1])
    spool.fail_once.add(crashing)
    dovecot.append(mailbox, *messages)
    with running(ImapIngester(settings(dovecot, mailbox), spool.store, state_db)) as ing:
        wait_for(spool.has_all(messages))
        wait_for(lambda: dovecot.uids(mailbox) == [], what="all marked")
    # Offered again after the "crash" (store raised after its commit) and stored once
    # thanks to the spool's key; every other message offered once; none lost.
    assert sorted(spool.keys()) == sorted(message_key(m) for m in messages)
    assert [spool.offers[message_key(m)] for m in messages] == [1, 2, 1, 1]
    assert spool.keys().index(message_key(messages[0])) == 0
    assert ing.stats.failures == 1
    assert "simulated crash" in ing.stats.last_error


def test_connection_lost_after_store_marks_without_offering_again(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    messages = [mail() for _ in range(3)]
    victim = message_key(messages[1])
    server_died = threading.Event()

    def kill_server(key: str) -> None:
        # The spool has the message; the server goes away before it can be marked.
        if key == victim and not server_died.is_set():
            dovecot.stop()
            server_died.set()

    spool.after_store = kill_server
    dovecot.append(mailbox, *messages)
    with running(ImapIngester(settings(dovecot, mailbox), spool.store, state_db)) as ing:
        wait_for(server_died.is_set, what="the server to die")
        dovecot.start()
        wait_for(spool.has_all(messages))
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the victim to be marked")
    assert_once(spool, messages)
    assert ing.stats.failures >= 1


def test_a_message_restored_by_another_client_is_still_taken(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    """A UID below the last stored one is not proof that the message was stored."""
    restored, later = mail(), mail()
    dovecot.append(mailbox, restored, later)
    with dovecot.admin() as c:
        c.select_folder(mailbox)
        c.add_flags(c.search(["ALL"])[:1], [b"\\Deleted"])  # someone else deletes it...
    with running(ImapIngester(settings(dovecot, mailbox), spool.store, state_db)):
        wait_for(spool.has_all([later]))
        with dovecot.admin() as c:
            c.select_folder(mailbox)
            c.remove_flags(c.search(["ALL"]), [b"\\Deleted"])  # ...and changes their mind
        wait_for(spool.has_all([restored]), what="the restored message")
    assert_once(spool, [restored, later])


def test_a_message_restored_while_we_mark_another_is_taken_at_once(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    """Another client takes its \\Deleted back while the ingester marks a message: the
    server reports it (FETCH) in the answer to our marking commands, not in the IDLE that
    follows, so the ingester must look again at once rather than wait for the renewal."""
    restored, later = mail(), mail()
    dovecot.append(mailbox, restored, later)
    with dovecot.admin() as c:
        c.select_folder(mailbox)
        c.add_flags(c.search(["ALL"])[:1], [b"\\Deleted"])

    class RestoreWhileMarking(ImapIngester):
        restored_once = False

        def _mark(self, client: Any, uid: int) -> None:
            if not self.restored_once:
                self.restored_once = True
                with dovecot.admin() as c:
                    c.select_folder(mailbox)
                    c.remove_flags(c.search(["DELETED"]), [b"\\Deleted"])
            super()._mark(client, uid)

    s = settings(dovecot, mailbox, idle_renew=300.0)  # no renewal comes to the rescue
    with running(RestoreWhileMarking(s, spool.store, state_db)):
        wait_for(spool.has_all([restored, later]), timeout=5.0, what="the restored message")
    assert_once(spool, [restored, later])


def test_after_a_crash_between_store_and_expunge_only_our_messages_are_expunged(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    theirs, ours = mail(), mail()
    dovecot.append(mailbox, theirs, ours)
    with dovecot.admin() as c:
        c.select_folder(mailbox)
        theirs_uid, _ours_uid = c.search(["ALL"])
        c.add_flags([theirs_uid], [b"\\Deleted"])  # another client's business

    class CrashBeforeExpunge(ImapIngester):
        crashed = False

        def _mark(self, client: Any, uid: int) -> None:
            if not self.crashed:
                self.crashed = True
                client.add_flags([uid], [b"\\Seen", b"\\Deleted"])
                raise OSError("simulated crash between STORE and EXPUNGE")
            super()._mark(client, uid)

    def all_uids() -> list[int]:
        with dovecot.admin() as c:
            c.select_folder(mailbox, readonly=True)
            return sorted(c.search(["ALL"]))

    with running(CrashBeforeExpunge(settings(dovecot, mailbox), spool.store, state_db)) as ing:
        wait_for(lambda: ing.stats.failures == 1 and ing.stats.activity == "waiting")
        wait_for(lambda: all_uids() == [theirs_uid], what="our leftover to be expunged")
    assert_once(spool, [ours])


def test_uidvalidity_change_rescans_without_doubles_or_losses(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    old = [mail() for _ in range(5)]
    dovecot.append(mailbox, *old)
    with running(ImapIngester(settings(dovecot, mailbox), spool.store, state_db)) as ing:
        wait_for(spool.has_all(old))
        with dovecot.admin() as c:
            c.select_folder(mailbox)
            before = c.folder_status(mailbox, ["UIDVALIDITY"])[b"UIDVALIDITY"]
            c.close_folder()
            c.delete_folder(mailbox)
            c.create_folder(mailbox)
            after = c.folder_status(mailbox, ["UIDVALIDITY"])[b"UIDVALIDITY"]
        assert after != before
        # A restored copy of an old message comes back, then new mail. The new messages get
        # UIDs 2 and 3, below the old last UID 5: without the reset they would be skipped.
        new = [mail() for _ in range(2)]
        dovecot.append(mailbox, old[0], *new)
        wait_for(spool.has_all(new), what="new mail in the recreated mailbox")
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the restored copy to be marked")
    assert_once(spool, old + new)
    assert ing.stats.duplicates == 1


def test_moves_to_a_processed_folder_when_configured(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    messages = [mail() for _ in range(2)]
    dovecot.append(mailbox, *messages)
    s = settings(dovecot, mailbox, processed_folder=f"{mailbox}-done")
    with running(ImapIngester(s, spool.store, state_db)):
        wait_for(spool.has_all(messages))
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the mailbox to empty")
    assert len(dovecot.uids(f"{mailbox}-done")) == 2
    assert_once(spool, messages)


@pytest.fixture(scope="module")
def plain_dovecot(dovecot: Dovecot) -> Iterator[Dovecot]:
    """A Dovecot that advertises only IMAP4rev1: no IDLE, no MOVE, no UIDPLUS."""
    server = Dovecot(extra_config="imap_capability = IMAP4rev1 LITERAL+")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("move", [False, True], ids=["delete", "move"])
def test_plain_imap4rev1_server_polls_and_marks_without_extensions(
    plain_dovecot: Dovecot, spool: Spool, state_db: sa.Engine, move: bool
) -> None:
    box = f"plain{next(folders)}"
    processed = f"{box}-done" if move else None
    with plain_dovecot.admin() as c:
        c.create_folder(box)
    messages = [mail() for _ in range(3)]
    plain_dovecot.append(box, *messages)
    s = settings(plain_dovecot, box, processed_folder=processed, use_idle=True)
    with running(ImapIngester(s, spool.store, state_db)) as ing:
        # The server does not offer IDLE (RFC 2177), so the ingester polls despite use_idle.
        wait_for(lambda: ing.stats.mode == "poll", what="polling")
        wait_for(spool.has_all(messages))
        # Marked with STORE + EXPUNGE (RFC 3501 §6.4.3), after COPY when moving.
        wait_for(lambda: plain_dovecot.uids(box) == [], what="the mailbox to empty")
    assert_once(spool, messages)
    if processed:
        assert len(plain_dovecot.uids(processed)) == 3  # created by the ingester


def test_implicit_tls_is_verified(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    m = mail()
    dovecot.append(mailbox, m)
    s = settings(dovecot, mailbox)
    tls = ImapSettings(ImapEndpoint.parse(dovecot.url(mailbox, tls=True)), **_rest(s))
    with running(ImapIngester(tls, spool.store, state_db)):
        wait_for(spool.has_all([m]))


def test_an_untrusted_certificate_is_refused_and_nothing_leaks_to_the_log(
    dovecot: Dovecot,
    mailbox: str,
    spool: Spool,
    state_db: sa.Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dovecot.append(mailbox, mail())
    log_before = len(dovecot.log)
    # The system trust store does not know the test CA: no login, no password sent.
    s = settings(dovecot, mailbox, ssl_context=None)
    caplog.set_level(logging.DEBUG)
    with running(ImapIngester(s, spool.store, state_db)) as ing:
        wait_for(lambda: ing.stats.failures >= 2, what="refusals")
    assert spool.keys() == []
    assert "CERTIFICATE_VERIFY_FAILED" in ing.stats.last_error
    assert "Login:" not in dovecot.log[log_before:]
    assert USER not in caplog.text and PASSWORD not in caplog.text
    assert "127.0.0.1" in caplog.text


def test_logs_show_no_address_even_at_debug(
    dovecot: Dovecot,
    mailbox: str,
    spool: Spool,
    state_db: sa.Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """第4条3 and design.md: the login, the messages and a failing store leave no address."""
    messages = [mail(), mail()]
    spool.fail_once.add(message_key(messages[0]))
    dovecot.append(mailbox, *messages)
    caplog.set_level(logging.DEBUG)
    with running(ImapIngester(settings(dovecot, mailbox), spool.store, state_db)):
        wait_for(spool.has_all(messages))
    assert "store failed" in caplog.text and "connected" in caplog.text
    for address in (USER, "ingest%40", "citizen@example.net", "gomi-recycle-subscribe@"):
        assert address not in caplog.text


def test_async_run_stops_promptly_from_idle(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_db: sa.Engine
) -> None:
    m = mail()
    dovecot.append(mailbox, m)
    ing = ImapIngester(settings(dovecot, mailbox, poll_interval=3600.0), spool.store, state_db)
    took: list[float] = []

    async def main() -> None:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(ing.run(stop))
            while not (spool.has_all([m])() and ing.stats.activity == "waiting"):
                await asyncio.sleep(0.02)
            t0 = time.monotonic()
            stop.set()
        took.append(time.monotonic() - t0)

    asyncio.run(main())
    assert took[0] < 1.0, took
    print(f"stop from IDLE took {took[0] * 1000:.0f} ms")


@pytest.mark.slow
def test_sigkill_loses_nothing_and_stores_nothing_twice(
    dovecot: Dovecot, mailbox: str, spool: Spool, state_url: str, tmp_path: Path
) -> None:
    """The ingester in its own process, killed with SIGKILL again and again while mail keeps
    arriving: every message ends up in the spool once; a kill can cause at most one
    re-offer (between the spool's commit and the state's), which the spool's key absorbs."""
    ca = tmp_path / "ca.pem"
    dovecot.ca.cert_pem.write_to_path(str(ca))
    messages = [mail() for _ in range(150)]
    worker = [sys.executable, imapkit.__file__, dovecot.url(mailbox), state_url]
    worker += [str(spool.path), str(ca)]
    # the worker runs this file as a script: it finds tests/support as pytest does
    env = imapkit.worker_env()
    feeder = threading.Thread(target=dovecot.append, args=(mailbox, *messages))
    feeder.start()
    rng = random.Random(20261125)
    kills = 0
    try:
        for _ in range(10):
            proc = subprocess.Popen(worker, env=env)
            try:
                seen = len(spool.keys())
                wait_for(lambda n=seen: len(spool.keys()) > n, timeout=20, what="progress")
                # Not synchronisation: a random instant for the kill, anywhere in the cycle.
                time.sleep(rng.uniform(0, 0.03))
            finally:
                proc.kill()
                proc.wait()
            kills += 1
        feeder.join()
        proc = subprocess.Popen(worker, env=env)
        try:
            wait_for(spool.has_all(messages), timeout=30, what="the rest after the kills")
            wait_for(lambda: dovecot.uids(mailbox) == [], what="the mailbox to empty")
        finally:
            proc.terminate()  # SIGTERM: the worker sets its stop event and ends cleanly
            assert proc.wait(10) == 0
    finally:
        feeder.join()
    assert sorted(spool.keys()) == sorted(message_key(m) for m in messages)
    reoffered = sum(spool.offers.values()) - len(messages)
    assert 0 <= reoffered <= kills
    print(f"{kills} SIGKILLs, {reoffered} re-offers absorbed by the spool key")


# -- without a server ---------------------------------------------------------------------


def _rest(s: ImapSettings) -> dict[str, object]:
    return {k: getattr(s, k) for k in s.__dataclass_fields__ if k != "endpoint"}


def test_url_forms() -> None:
    e = ImapEndpoint.parse("imaps://list%40city.example.jp@mail.example.jp/INBOX")
    assert (e.host, e.port, e.user, e.mailbox, e.implicit_tls) == (
        "mail.example.jp",
        993,
        "list@city.example.jp",
        "INBOX",
        True,
    )
    e = ImapEndpoint.parse("imap://u;AUTH=*@[::1]:1143")
    assert (e.host, e.port, e.user, e.mailbox, e.implicit_tls) == ("::1", 1143, "u", "INBOX", False)
    assert str(ImapEndpoint.parse("imaps://a%40b.jp@h/Lists/in")) == "imaps://h:993/Lists/in"
    for bad in ("pop3://u@h/", "imaps://h/INBOX", "imaps://u:pw@h/", "imaps://u@h:99999/"):
        with pytest.raises(ImapConfigError):
            ImapEndpoint.parse(bad)


def test_password_from_environment_or_file(tmp_path: Path) -> None:
    assert read_password({"HAISHIN_IMAP_PASSWORD": "p1"}) == "p1"
    f = tmp_path / "pw"
    f.write_text("p2\n")
    assert read_password({"HAISHIN_IMAP_PASSWORD_FILE": str(f)}) == "p2"
    with pytest.raises(ImapConfigError, match="HAISHIN_IMAP_PASSWORD"):
        read_password({})
    with pytest.raises(ImapConfigError, match="cannot read"):
        read_password({"HAISHIN_IMAP_PASSWORD_FILE": str(tmp_path / "missing")})
    s = ImapSettings.from_url("imaps://u@h/INBOX", environ={"HAISHIN_IMAP_PASSWORD": "s3cr3t"})
    assert s.password == "s3cr3t" and "s3cr3t" not in repr(s)


def _outward_address() -> str:
    """This machine's address on its default route: not loopback, yet reachable locally."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # UDP: no packet is sent
        return str(s.getsockname()[0])


def test_no_password_in_clear_off_loopback(state_db: sa.Engine, spool: Spool) -> None:
    """imap:// to a server without STARTTLS, not on loopback: refused before LOGIN."""
    heard: list[bytes] = []
    with socket.socket() as srv:
        srv.bind(("0.0.0.0", 0))
        srv.listen()
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        serving = threading.Event()
        serving.set()

        def serve() -> None:
            while serving.is_set():
                try:
                    conn, _ = srv.accept()
                except TimeoutError:
                    continue
                with conn, conn.makefile("rwb") as f:
                    conn.settimeout(1.0)
                    f.write(b"* OK no TLS here\r\n")
                    f.flush()
                    with contextlib.suppress(OSError):
                        for line in f:
                            heard.append(line)
                            tag, _, command = line.partition(b" ")
                            if command.upper().startswith(b"CAPABILITY"):
                                f.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
                                f.write(tag + b" OK done\r\n")
                            else:
                                f.write(tag + b" NO not here\r\n")
                            f.flush()

        t = threading.Thread(target=serve)
        t.start()
        endpoint = ImapEndpoint(_outward_address(), port, "u", "INBOX", False)
        s = ImapSettings(endpoint, "pw", backoff_initial=0.05, backoff_max=0.1)
        try:
            with running(ImapIngester(s, spool.store, state_db)) as ing:
                wait_for(lambda: ing.stats.failures >= 1, what="the refusal")
        finally:
            serving.clear()
            t.join(5)
    assert "no STARTTLS" in ing.stats.last_error
    assert heard and all(b"CAPABILITY" in h.upper() or b"LOGOUT" in h.upper() for h in heard)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback(endpoint.host)
