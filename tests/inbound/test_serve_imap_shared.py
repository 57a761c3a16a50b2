"""Two `haishin serve --imap` daemons on one PostgreSQL database and one real Dovecot
mailbox (issue 13 item 4): the first imports the state file of the version before, one reads
while the other stands by, and each message is stored and answered once. (Two daemons on
one SQLite file is not a supported set-up: the sender takes every claim but its own for
stale there, store/queue.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.inbound.imap.settings import ImapEndpoint
from haishin.inbound.imap.wire import message_key
from support import helpers, smarthost
from support.dovecot import PASSWORD, Dovecot
from support.imapkit import folders, former_state_file


def subscribe(n: int) -> bytes:
    to = f"gomi-recycle-subscribe@{helpers.DOMAIN}"
    return (
        f"Delivered-To: {to}\r\nReturn-Path: <citizen{n}@example.jp>\r\n"
        f"From: citizen{n}@example.jp\r\nTo: {to}\r\n"
        f"Subject: \r\nMessage-ID: <shared-{n}@example.jp>\r\n\r\n"
    ).encode()


def test_two_daemons_share_the_imap_state_and_answer_each_message_once(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    box = f"shared{next(folders)}"
    if not dovecot.running:
        dovecot.start()
    with dovecot.admin() as c:
        c.create_folder(box)
        uidvalidity = c.folder_status(box, ["UIDVALIDITY"])[b"UIDVALIDITY"]
    url = dovecot.url(box, tls=True)
    ca = tmp_path / "ca.pem"
    dovecot.ca.cert_pem.write_to_path(str(ca))
    monkeypatch.setenv("HAISHIN_IMAP_PASSWORD", PASSWORD)
    # The version before stored this one, recorded it in its state file and stopped before
    # marking it: after the upgrade it must be marked, not answered a second time.
    known = subscribe(0)
    dovecot.append(box, known)
    old = tmp_path / "imap-state.sqlite"
    state_id = ImapEndpoint.parse(url).state_id
    former_state_file(
        old, [(state_id, uidvalidity, 1)], [(message_key(known), state_id, 1, time.time())]
    )
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    imap = ["--imap", url, "--imap-ca", str(ca)]

    with helpers.pg_database() as db, smarthost.sink() as sink:
        engine = sa.create_engine(db)
        first = helpers.start(
            dirs[0], db, smarthost=sink.port, extra=[*imap, "--imap-state", str(old)]
        )
        daemons = [first]
        try:
            helpers.wait_until(lambda: dovecot.uids(box) == [], what="the known one marked")
            assert old.with_name("imap-state.sqlite.migrated").exists()
            daemons.append(
                helpers.start(
                    dirs[1],
                    db,
                    smarthost=sink.port,
                    extra=[*imap, "--imap-state", str(dirs[1] / "imap-state.sqlite")],
                )
            )
            helpers.wait_until(
                lambda: "standing by" in helpers.daemon_log(daemons[1]),
                what="the second daemon to stand by",
            )
            dovecot.append(box, *(subscribe(n) for n in range(1, 7)))
            sink.wait(6)
            helpers.wait_until(lambda: dovecot.uids(box) == [], what="the mailbox to empty")
            helpers.wait_until(lambda: helpers.drained(engine), what="both daemons idle")
            with engine.connect() as conn:
                stored = conn.execute(
                    sa.text("SELECT rcpts, mail_from FROM inbound WHERE source = 'imap'")
                ).all()
            assert sorted(m for _, m in stored) == [f"citizen{n}@example.jp" for n in range(1, 7)]
            answered = sorted(r for m in sink.messages for r in m.rcpts)
            assert answered == [f"citizen{n}@example.jp" for n in range(1, 7)]
            assert "standing by" not in helpers.daemon_log(first)
        finally:
            codes = [d.stop() for d in daemons]
            engine.dispose()
        assert codes == [0] * len(daemons)
        for d in daemons:  # the stop included (the log file is closed by now)
            assert "Traceback" not in Path(d.log.name).read_text(errors="replace")
