"""Issue 5, "Done when" 2: SIGKILL while mail is coming in; nothing acknowledged is lost
or done twice, and nothing refused is done at all (RFC 5321 §4.1.1.4, 第8条).

Each attempt carries a unique marker. An attempt that got 250 must be in the spool once and
processed once (one forward queued); one that got a 4xx/5xx reply must not be there. One
whose connection died before any reply is ambiguous by the nature of SMTP (RFC 1047): it
may be there, but at most once and processed at most once.
"""

from __future__ import annotations

import re
import smtplib
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from support import helpers
from support.helpers import DOMAIN

TOTAL = 2000
KILL_AT = (250, 600, 950, 1300, 1650)
RCPT = f"kosodate-news-owner@{DOMAIN}"


@pytest.mark.slow
def test_sigkill_loses_nothing_and_repeats_nothing(tmp_path: Path, db_url: str) -> None:
    state = {"port": 0}
    port_ready = threading.Event()
    accepted: list[str] = []
    refused: list[str] = []
    unknown: list[str] = []
    progress = threading.Condition()
    attempt = 0

    def client() -> None:
        nonlocal attempt
        conn: smtplib.SMTP | None = None
        while len(accepted) < TOTAL:
            marker = f"crash-{attempt:05d}"
            attempt += 1
            raw = (
                f"From: citizen@example.jp\r\nSubject: {marker}\r\n"
                f"Message-ID: <{marker}@crash.test>\r\n\r\nお問い合わせ {marker}\r\n"
            ).encode()
            try:
                if conn is None:
                    port_ready.wait()
                    conn = smtplib.SMTP("127.0.0.1", state["port"], timeout=10)
                conn.sendmail("citizen@example.jp", [RCPT], raw)
            except smtplib.SMTPResponseException as exc:
                (refused if exc.smtp_code >= 400 else unknown).append(marker)
                conn = None
            except smtplib.SMTPRecipientsRefused:
                refused.append(marker)
                conn = None
            except (OSError, smtplib.SMTPException):
                # no reply at all (connect refused counts as refused: nothing was sent)
                unknown.append(marker)
                conn = None
                port_ready.wait()
            else:
                with progress:
                    accepted.append(marker)
                    progress.notify_all()
        if conn is not None:
            conn.quit()

    d = helpers.start(tmp_path, db_url)
    state["port"] = d.smtp[1]
    port_ready.set()
    t = threading.Thread(target=client)
    t.start()
    kills = 0
    for threshold in KILL_AT:
        with progress:
            assert progress.wait_for(lambda th=threshold: len(accepted) >= th, 120)
        port_ready.clear()
        d.kill()  # SIGKILL: no goodbye, no flush
        kills += 1
        d = helpers.start(tmp_path, db_url)
        state["port"] = d.smtp[1]
        port_ready.set()
    t.join(300)
    assert not t.is_alive()
    engine = sa.create_engine(db_url)
    helpers.wait_until(lambda: helpers.drained(engine), 120, "drain")
    assert d.stop() == 0

    marker_re = re.compile(rb"crash-\d{5}")
    spooled: dict[str, list[str]] = {}
    forwards: dict[str, int] = {}
    with engine.connect() as c:
        for raw, st in c.execute(sa.text("SELECT raw, state FROM inbound")):
            m = marker_re.search(raw)
            assert m is not None
            spooled.setdefault(m.group().decode(), []).append(st)
        for (raw,) in c.execute(
            sa.text("SELECT raw FROM outbound_messages WHERE kind = 'forward'")
        ):
            m = re.search(rb"In-Reply-To: <(crash-\d{5})@crash.test>", raw)
            assert m is not None
            forwards[m.group(1).decode()] = forwards.get(m.group(1).decode(), 0) + 1
    engine.dispose()

    assert len(accepted) == TOTAL and kills == len(KILL_AT)
    for marker in accepted:
        assert spooled.get(marker) == ["done"], marker
        assert forwards.get(marker) == 1, marker
    for marker in refused:
        assert marker not in spooled and marker not in forwards, marker
    ambiguous_stored = [m for m in unknown if m in spooled]
    for marker in ambiguous_stored:
        assert spooled[marker] == ["done"] and forwards.get(marker) == 1
    assert sum(forwards.values()) == len(spooled)
    print(
        f"\ncrash test ({db_url.split(':')[0]}): {TOTAL} acknowledged, {kills} SIGKILLs, {len(refused)} refused, "
        f"{len(unknown)} without reply ({len(ambiguous_stored)} of them stored), "
        f"{len(spooled)} spooled, {sum(forwards.values())} forwards queued"
    )
