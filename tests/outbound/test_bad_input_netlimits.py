"""Issue 11, item 3, against the daemon as deployed (`haishin serve`, a subprocess, real
SMTP and LMTP over loopback): one client network's flood leaves another served, and
XFORWARD cannot be used by a direct client to spend someone else's share.

Loopback is a /8 on Linux, so a client can pick its source address: 127.0.0.2 and
127.0.0.3 are one /24 (one network), 127.0.1.x is another. The daemon listens on
127.0.0.1, which is also the only forwarder it trusts by default (config/service.yaml).
"""

from __future__ import annotations

import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from support import helpers
from support.helpers import CONFIG, DOMAIN
from support.smarthost import Sink

SUB = f"gomi-recycle-subscribe@{DOMAIN}"
NETWORK_CAP = 5
FLOOD = NETWORK_CAP + 7
XFORWARD_OK = 250
XFORWARD_REFUSED = 550
XFORWARD_IN_TRANSACTION = 503
XFORWARD_SYNTAX = 501


def small_caps(tmp: Path) -> Path:
    """The sample registry with a per-network cap small enough to run past in a test."""
    config = tmp / "config"
    shutil.copytree(CONFIG, config)
    service = config / "service.yaml"
    text = service.read_text(encoding="utf-8")
    old = "per_network: {count: 200, window_hours: 1}"
    assert text.count(old) == 1, "config/service.yaml: limits.confirmations.per_network"
    service.write_text(
        text.replace(old, f"per_network: {{count: {NETWORK_CAP}, window_hours: 1}}"),
        encoding="utf-8",
    )
    return config


@pytest.fixture
def daemon(tmp_path: Path, sink: Sink) -> Iterator[helpers.Daemon]:
    d = helpers.start(
        tmp_path,
        f"sqlite:///{tmp_path / 'haishin.db'}",
        smarthost=sink.port,
        config=small_caps(tmp_path),
    )
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            assert d.stop() == 0
        log = Path(d.log.name).read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in log, log[-4000:]


@pytest.fixture
def engine(daemon: helpers.Daemon) -> Iterator[sa.Engine]:
    e = sa.create_engine(daemon.db_url)
    yield e
    e.dispose()


def client(d: helpers.Daemon, source: str) -> smtplib.SMTP:
    return smtplib.SMTP(*d.smtp, timeout=helpers.WAIT, source_address=(source, 0))


def subscribe(c: smtplib.SMTP, who: str) -> None:
    c.sendmail(who, [SUB], f"From: {who}\r\nTo: {SUB}\r\n\r\n".encode())


def client_of(engine: sa.Engine, sender: str) -> str | None:
    with engine.connect() as conn:
        value: str | None = conn.execute(
            sa.text("SELECT client_address FROM inbound WHERE mail_from = :s"), {"s": sender}
        ).scalar_one()
    return value


def drain(engine: sa.Engine) -> None:
    helpers.wait_until(lambda: helpers.drained(engine), what="the daemon's queues to drain")


def test_a_flood_from_one_network_leaves_a_resident_of_another_served(
    daemon: helpers.Daemon, engine: sa.Engine, sink: Sink
) -> None:
    """The Done-when line: more subscribe requests than the hourly per-network cap from
    127.0.0.0/24 (forged, for distinct addresses, over two source addresses), then one
    from 127.0.1.0/24, which gets its confirmation."""
    victims = [f"victim{i}@example.jp" for i in range(FLOOD)]
    with client(daemon, "127.0.0.2") as a, client(daemon, "127.0.0.3") as b:
        for i, who in enumerate(victims):
            subscribe(a if i % 2 else b, who)
    drain(engine)
    assert sum(len(sink.to(v)) for v in victims) == NETWORK_CAP
    with client(daemon, "127.0.1.7") as c:
        subscribe(c, "resident@example.jp")
    drain(engine)
    (confirmation,) = sink.to("resident@example.jp")
    assert "登録の確認" in str(confirmation.msg["Subject"])
    assert client_of(engine, "resident@example.jp") == "127.0.1.7"
    with engine.connect() as conn:
        networks = dict(
            conn.execute(
                sa.text("SELECT client_network, count(*) FROM confirmations GROUP BY 1")
            ).all()
        )
    assert networks == {"127.0.0.0/24": NETWORK_CAP, "127.0.1.0/24": 1}


def ehlo_keywords(c: smtplib.SMTP) -> set[str]:
    c.ehlo("client.example.net")
    return set(c.esmtp_features)


def test_xforward_from_an_untrusted_client_is_refused_and_changes_nothing(
    daemon: helpers.Daemon, engine: sa.Engine, sink: Sink
) -> None:
    """A direct client (127.0.0.2 is not a forwarder) is not offered XFORWARD; trying it
    anyway gets 550, and its mail still counts for its own network, so it cannot spend
    127.0.1.0/24's share (nor escape its own cap) by naming another client."""
    with client(daemon, "127.0.0.2") as c:
        assert "xforward" not in ehlo_keywords(c)
        assert b"XFORWARD" not in c.help()
        for i in range(NETWORK_CAP + 2):
            code, text = c.docmd("XFORWARD", f"ADDR=127.0.1.{i + 1} NAME=resident.example.net")
            assert code == XFORWARD_REFUSED, text
            assert b"not permitted" in text
            subscribe(c, f"forger{i}@example.jp")
        code, _ = c.docmd("XFORWARD", "ADDR=IPv6:2001:db8::1")
        assert code == XFORWARD_REFUSED
    drain(engine)
    assert {client_of(engine, f"forger{i}@example.jp") for i in range(NETWORK_CAP + 2)} == {
        "127.0.0.2"
    }
    assert sum(len(sink.to(f"forger{i}@example.jp")) for i in range(NETWORK_CAP + 2)) == (
        NETWORK_CAP
    )
    with client(daemon, "127.0.1.1") as c:  # the network the forger named is untouched
        subscribe(c, "resident@example.jp")
    drain(engine)
    assert len(sink.to("resident@example.jp")) == 1


def test_xforward_from_the_trusted_front_end(daemon: helpers.Daemon, engine: sa.Engine) -> None:
    """From 127.0.0.1 (the default forwarder, as Postfix on the same host): offered in
    EHLO, and the named client is stored with the message, for that transaction only."""
    with client(daemon, "127.0.0.1") as c:
        assert "xforward" in ehlo_keywords(c)
        assert c.esmtp_features["xforward"].split() == ["NAME", "ADDR", "PROTO", "HELO"]
        assert b"XFORWARD" in c.help()
        # Postfix's own form: xtext-encoded values (RFC 3461 §4), several commands
        code, _ = c.docmd("XFORWARD", "NAME=mx.example.net ADDR=198.51.100.23 PROTO=ESMTP")
        assert code == XFORWARD_OK
        assert c.docmd("XFORWARD", "HELO=mx+2Eexample.net")[0] == XFORWARD_OK
        subscribe(c, "via-postfix@example.jp")
        subscribe(c, "next@example.jp")  # the attributes held for one transaction only
        assert c.docmd("XFORWARD", "ADDR=IPv6:2001:DB8::17")[0] == XFORWARD_OK
        subscribe(c, "v6@example.jp")
        assert c.docmd("XFORWARD", "ADDR=[UNAVAILABLE]")[0] == XFORWARD_OK
        subscribe(c, "unavailable@example.jp")
        # an RSET ends what an XFORWARD said, as the end of a transaction does
        assert c.docmd("XFORWARD", "ADDR=203.0.113.1")[0] == XFORWARD_OK
        c.rset()
        subscribe(c, "after-rset@example.jp")
        # refused: inside a transaction, bad syntax, unknown attribute, not an address
        c.mail("inside@example.jp")
        code, text = c.docmd("XFORWARD", "ADDR=203.0.113.2")
        assert code == XFORWARD_IN_TRANSACTION, text
        c.rset()
        for bad in (
            "",
            "ADDR",
            "ADDR=",
            "PORT=25",
            "ADDR=mx.example.net",
            "ADDR=198.51.100.300",
            "ADDR=198.51.100.1+",
            "ADDR=198.51.100.1+00",  # xtext for a NUL: not an address either
            "ADDR=127.0.0.1\x7f",
            "NAME=" + "x" * 300,
        ):
            code, text = c.docmd("XFORWARD", bad)
            assert code == XFORWARD_SYNTAX, (bad, text)
        subscribe(c, "after-bad@example.jp")
    drain(engine)
    assert client_of(engine, "via-postfix@example.jp") == "198.51.100.23"
    assert client_of(engine, "next@example.jp") == "127.0.0.1"
    assert client_of(engine, "v6@example.jp") == "2001:db8::17"
    assert client_of(engine, "unavailable@example.jp") == "127.0.0.1"
    assert client_of(engine, "after-rset@example.jp") == "127.0.0.1"
    assert client_of(engine, "after-bad@example.jp") == "127.0.0.1"
    with engine.connect() as conn:
        net = conn.execute(
            sa.text("SELECT client_network FROM confirmations WHERE address_key = 'v6@example.jp'")
        ).scalar_one()
    assert net == "2001:db8::/56"


def test_xforward_over_lmtp(tmp_path: Path, sink: Sink) -> None:
    """The way Postfix uses it (deploy/): LHLO offers it to the trusted front end."""
    d = helpers.start(
        tmp_path, f"sqlite:///{tmp_path / 'haishin.db'}", smarthost=sink.port, extra=["--lmtp"]
    )
    engine = sa.create_engine(d.db_url)
    try:
        with smtplib.LMTP(*d.smtp, timeout=helpers.WAIT) as c:
            c.ehlo("postfix.example.net")  # smtplib.LMTP sends LHLO
            assert "xforward" in c.esmtp_features
            assert c.docmd("XFORWARD", "ADDR=192.0.2.44 PROTO=ESMTP")[0] == XFORWARD_OK
            subscribe(c, "lmtp@example.jp")
        with smtplib.LMTP(*d.smtp, timeout=helpers.WAIT, source_address=("127.0.0.5", 0)) as c:
            c.ehlo("stranger.example.net")
            assert "xforward" not in c.esmtp_features
            assert c.docmd("XFORWARD", "ADDR=192.0.2.45")[0] == XFORWARD_REFUSED
        drain(engine)
        assert client_of(engine, "lmtp@example.jp") == "192.0.2.44"
        assert len(sink.to("lmtp@example.jp")) == 1
    finally:
        engine.dispose()
        assert d.stop() == 0
        assert "Traceback" not in Path(d.log.name).read_text(encoding="utf-8", errors="replace")
