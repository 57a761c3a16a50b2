"""An upgrade from the state file (`--imap-state`) to the state in the store (issue 13
item 4), against a real Dovecot: what the old version stored is not offered again, the file
is imported once and renamed, and the keys are pruned by age at each session as before."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.inbound.imap.session import ImapIngester
from haishin.inbound.imap.wire import message_key
from haishin.store.engine import open_store
from haishin.store.schema import imap_seen
from support.dovecot import Dovecot, wait_for
from support.imapkit import Spool, former_state_file, mail, running, settings


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    e = open_store(db_url)
    yield e
    e.dispose()


def test_what_the_state_file_knew_is_not_offered_again(
    dovecot: Dovecot, mailbox: str, spool: Spool, engine: sa.Engine, tmp_path: Path
) -> None:
    # The old version stored these two and recorded them; it stopped before marking them
    # on the server (the window between the state commit and the mark).
    known, new = [mail(), mail()], [mail()]
    dovecot.append(mailbox, *known, *new)
    with dovecot.admin() as c:
        uidvalidity = c.folder_status(mailbox, ["UIDVALIDITY"])[b"UIDVALIDITY"]
    old = tmp_path / "var" / "imap-state.sqlite"
    old.parent.mkdir()
    s = settings(dovecot, mailbox, state_file=old)
    box = s.endpoint.state_id
    former_state_file(
        old,
        [(box, uidvalidity, 2)],
        [(message_key(m), box, uid, time.time()) for uid, m in enumerate(known, 1)],
    )

    with running(ImapIngester(s, spool.store, engine)) as ing:
        wait_for(spool.has_all(new), what="the new message")
        wait_for(lambda: dovecot.uids(mailbox) == [], what="the known ones to be marked")

    assert spool.keys() == [message_key(new[0])]
    assert dict(spool.offers) == {message_key(new[0]): 1}, "a known message was offered"
    assert (ing.stats.stored, ing.stats.duplicates) == (1, 2)
    assert not old.exists() and old.with_name("imap-state.sqlite.migrated").exists()

    # The next start finds no file to import and goes on from the store.
    later = [mail()]
    dovecot.append(mailbox, *later)
    with running(ImapIngester(s, spool.store, engine)) as again:
        wait_for(spool.has_all(later), what="mail after the upgrade")
    assert again.stats.stored == 1 and len(spool.keys()) == 2


def test_an_unreadable_state_file_holds_ingestion_back_until_it_is_moved(
    dovecot: Dovecot, mailbox: str, spool: Spool, engine: sa.Engine, tmp_path: Path
) -> None:
    """Without its seen-set the old version's unmarked messages would be offered again; the
    ingester says why it waits instead, and starts once the operator moves the file."""
    old = tmp_path / "imap-state.sqlite"
    old.write_bytes(b"garbage, not SQLite" * 64)
    m = mail()
    dovecot.append(mailbox, m)
    with running(
        ImapIngester(settings(dovecot, mailbox, state_file=old), spool.store, engine)
    ) as ing:
        wait_for(lambda: ing.stats.failures >= 2, what="the import to be retried")
        assert spool.keys() == [] and ing.stats.connects == 0
        assert "cannot read the old IMAP state file" in ing.stats.last_error
        old.rename(tmp_path / "moved-away")
        wait_for(spool.has_all([m]), what="ingestion once the file is gone")


def test_each_session_forgets_keys_older_than_dedupe_days(
    dovecot: Dovecot, mailbox: str, spool: Spool, engine: sa.Engine
) -> None:
    s = settings(dovecot, mailbox, dedupe_days=30.0)
    now = utcnow()
    with engine.begin() as conn:
        for n, age in ((1, 31), (2, 29)):
            conn.execute(
                imap_seen.insert().values(
                    key=f"{n:064x}",
                    mailbox=s.endpoint.state_id,
                    uid=n,
                    stored_at=now - dt.timedelta(days=age),
                )
            )
    with running(ImapIngester(s, spool.store, engine)) as ing:
        wait_for(lambda: ing.stats.activity == "waiting", what="a session")
    with engine.connect() as conn:
        assert conn.execute(sa.select(imap_seen.c.key)).scalars().all() == [f"{2:064x}"]
