"""Issue 12, "Done when": the bounce classes, recorded through the router and the sender.

- 20 refusals about our authentication (550 5.7.26 from the smarthost at send time, read
  by the same classifier as the reports) for one destination domain within the window:
  one mail to the クラウドサービス管理者 with the evidence, nobody's score changed, the
  Prometheus counter by reason and domain;
- an ARF complaint (a real one from the Sisimai corpus) at a post's VERP address: the
  subscription ends at once, withdrawn by complaint in the consent record, counted in
  the 情報管理者's digest;
- docomo's filter refusal (real, corpus) repeated over the span: disabled with its
  reason, which the digest explains (受信拒否設定).

The handlers' cases run in process (support/inprocess.py), on SQLite and PostgreSQL; one
test goes through a running `haishin serve` (the smarthost's refusals, the alarm mail and
the counter at /metrics, a complaint by SMTP) and reads its log; the 4xx given up on is the
sender's retry decision, so it runs the daemon's sender too.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from haishin.bounces.record import service_day
from haishin.cli import cli
from haishin.clock import utcnow
from haishin.store import bounces as stored
from haishin.store import open_store, subscribers
from haishin.store.states import MessageKind, QueueState
from support import helpers
from support.helpers import CONFIG, DOMAIN, HAISHIN
from support.inprocess import InProcess, inprocess
from support.smarthost import Sink
from support.verp import events, fanout_token, post_to, score, subscribe

CORPUS = Path(__file__).parents[1] / "data" / "bounces" / "corpus"
SLUG = "kosodate-news"
CLOUD_ADMIN = "promo-cloud@city.kawasaki.example.jp"  # config/service.yaml: cloud_admin
MANAGER = "kosodate-kacho@city.kawasaki.example.jp"
GMAIL = "mail.example.net"  # a destination domain whose MX refuses our DKIM
UNAUTH = "550 5.7.26 This mail has been blocked because the sender is unauthenticated."
COMPLAINER = "hanako.yamada@example.org"
DOCOMO = "k-nakamura.0815@docomo.ne.jp"


def _sample(sample: str, named: str, who: str) -> bytes:
    """A corpus sample, its recipient rewritten to `who`, with CRLF as SMTP carries it."""
    raw = (CORPUS / sample).read_bytes()
    assert named.encode() in raw
    return raw.replace(named.encode(), who.encode()).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _verp(token: str) -> str:
    return f"{SLUG}-bounces+{token}@{DOMAIN}"


def _bounce(d: helpers.Daemon, token: str, sample: str, named: str, who: str) -> None:
    """A corpus sample sent to our VERP address by SMTP, from the null sender."""
    with smtplib.SMTP(*d.smtp) as client:
        client.sendmail("", [_verp(token)], _sample(sample, named, who))


def _run(*args: str) -> str:
    """The CLI in process; its standard output."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HAISHIN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def _method(engine: sa.Engine, address: str) -> tuple[str, str | None]:
    with engine.connect() as conn:
        sub = subscribers.find(conn, SLUG, address)
    assert sub is not None
    return str(sub.status), sub.unsubscribe_method


@pytest.fixture
def ip(db_url: str) -> Iterator[InProcess]:
    with inprocess(db_url) as handlers:
        yield handlers


def test_bounce_classes_recorded(ip: InProcess, db_url: str) -> None:
    engine = ip.engine
    # 1. twenty refusals about our authentication at one domain, at send time
    victims = [f"reader{n:02d}@{GMAIL}" for n in range(21)]
    for address in victims:
        subscribe(engine, SLUG, address)
    for address in victims[:20]:
        post_to(engine, SLUG, address, state=QueueState.QUEUED)
        ip.refused(address, UNAUTH)
    (alarm,) = ip.queued(kind=MessageKind.NOTICE)
    assert alarm.rcpt == CLOUD_ADMIN
    assert GMAIL in alarm.subject and "送信元の問題" in alarm.subject
    body = alarm.body
    assert "authfailure" in body and "5.7.26" in body and "20 件" in body
    assert all(v not in body for v in victims)  # the evidence lines are masked
    assert len(events(engine)) == 20
    assert set(events(engine)) == {("smtp", "refused", "refused", "5.7.26")}
    # a 21st in the same window: recorded, no second mail
    post_to(engine, SLUG, victims[20], state=QueueState.QUEUED)
    ip.refused(victims[20], UNAUTH)
    assert len(events(engine)) == 21
    assert len(ip.queued(kind=MessageKind.NOTICE)) == 1
    for address in victims:
        assert score(engine, SLUG, address) is None  # nobody's score moved
        assert _method(engine, address) == ("active", None)
    status, metrics = ip.http("/metrics")
    assert status == 200
    assert (
        f'haishin_bounce_sender_refusals_total{{domain="{GMAIL}",reason="authfailure"}} 21.0'
        in metrics
    )

    # 2. an ARF complaint at a post's VERP address: unsubscribed at once
    complainer = subscribe(engine, SLUG, COMPLAINER)
    arf = _sample("arf-01.eml", "redacted@example.net", COMPLAINER)
    ip.deliver(arf, "", [_verp(fanout_token(complainer))])
    assert _method(engine, COMPLAINER) == ("unsubscribed", "complaint")  # the consent record
    assert events(engine)[-1] == ("verp", "complaint", "unsubscribed", None)

    # 3. docomo refuses by the subscriber's filter: on days 1 and 5 already (through
    #    the store API, as days that have passed), now on day 9: disabled with reason
    today = service_day(utcnow())
    phone = subscribe(engine, SLUG, DOCOMO)
    _filtered_before(engine, phone, today)
    named = "azumakuniyuki@ntt.docomo.example.ne.jp"
    report = _sample("rhost-nttdocomo-01.eml", named, DOCOMO)
    ip.deliver(report, "", [_verp(fanout_token(phone))])
    assert _method(engine, DOCOMO) == ("disabled", "bounce-filtered")
    assert events(engine)[-1] == ("verp", "refused", "disabled", "5.2.0")
    assert score(engine, SLUG, DOCOMO) is None  # disabled by the rule, not by a score

    # 4. the digest: the complaint counted, the disable explained
    config = ["--config", str(CONFIG), "--db", db_url]
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    _run("bounces", "digest", "--send", "--date", tomorrow, *config)
    (digest,) = ip.queued(MANAGER)
    text = digest.body
    assert "迷惑メールとしての報告（配信を解除しました）: 1 件" in text
    assert "受信側の拒否（受信拒否設定・迷惑メール判定など）: " in text
    assert DOCOMO in text and "受信拒否設定（ドメイン指定受信など）" in text
    assert len(ip.queued(CLOUD_ADMIN)) == 1  # still one alarm
    shown = _run("bounces", "report", SLUG, "--show-addresses", *config)
    assert f"{DOCOMO}\t{today}\t5.2.0\t受信拒否設定 (filtered)" in shown


def _filtered_before(engine: sa.Engine, phone: int, today: dt.date) -> None:
    """docomo's filter refused this subscriber on days 1 and 5 (today is day 9)."""
    with engine.begin() as conn:
        for back in (8, 4):
            stored.add_event(
                conn,
                stored.Event(
                    day=today - dt.timedelta(days=back),
                    channel=SLUG,
                    subscriber_id=phone,
                    source=stored.Source.VERP,
                    kind="refused",
                    outcome=stored.BounceOutcome.REFUSED,
                    status="5.2.0",
                    reason="filtered",
                    domain="docomo.ne.jp",
                ),
            )


def test_bounce_classes_through_the_daemon(tmp_path: Path, sqlite_url: str, sink: Sink) -> None:
    """The whole system once: the smarthost's refusals read by the sender, the alarm mail
    sent, the counter at /metrics, a complaint and docomo's filter refusal by SMTP; the log
    names nobody."""
    engine = open_store(sqlite_url)
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port)
    try:
        victims = [f"reader{n:02d}@{GMAIL}" for n in range(20)]
        for address in victims:
            subscribe(engine, SLUG, address)
            sink.answers[address] = UNAUTH
            post_to(engine, SLUG, address, state=QueueState.QUEUED)
        (alarm,) = sink.wait(1)
        assert alarm.rcpts == [CLOUD_ADMIN]
        assert GMAIL in str(alarm.msg["Subject"])
        helpers.wait_until(lambda: len(events(engine)) == 20, what="20 refusals recorded")
        assert set(events(engine)) == {("smtp", "refused", "refused", "5.7.26")}
        with urllib.request.urlopen(f"http://{d.http[0]}:{d.http[1]}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert (
            f'haishin_bounce_sender_refusals_total{{domain="{GMAIL}",reason="authfailure"}} 20.0'
            in metrics
        )

        complainer = subscribe(engine, SLUG, COMPLAINER)
        _bounce(d, fanout_token(complainer), "arf-01.eml", "redacted@example.net", COMPLAINER)
        helpers.wait_until(
            lambda: _method(engine, COMPLAINER)[0] == "unsubscribed", what="complaint"
        )
        assert _method(engine, COMPLAINER) == ("unsubscribed", "complaint")

        phone = subscribe(engine, SLUG, DOCOMO)
        _filtered_before(engine, phone, service_day(utcnow()))
        named = "azumakuniyuki@ntt.docomo.example.ne.jp"
        _bounce(d, fanout_token(phone), "rhost-nttdocomo-01.eml", named, DOCOMO)
        helpers.wait_until(lambda: _method(engine, DOCOMO)[0] == "disabled", what="filter disable")
        assert _method(engine, DOCOMO) == ("disabled", "bounce-filtered")

        helpers.wait_until(lambda: helpers.drained(engine), what="drain")
        assert d.stop() == 0
        log = "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))
        assert "Traceback" not in log and "bounce alarm" in log
        for address in [COMPLAINER, DOCOMO, *victims]:
            assert address not in log
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()


def test_a_4xx_given_up_on_goes_through_the_classifier(
    tmp_path: Path, sqlite_url: str, sink: Sink
) -> None:
    """A 4xx at send time is retried, not judged; the one that ends the retries (the row's
    last attempt) is classified like any refusal: temporary, scored lightly."""
    engine = open_store(sqlite_url)
    full, later = "full.mailbox@example.net", "try.later@example.net"
    for address in (full, later):
        subscribe(engine, SLUG, address)
        sink.answers[address] = "452 4.2.2 Mailbox full"
    post_to(engine, SLUG, later, state=QueueState.QUEUED)  # first attempt: retried, no verdict
    post_to(engine, SLUG, full, state=QueueState.QUEUED)
    with engine.begin() as conn:  # the last attempt the retry window allows (sender.py)
        conn.execute(sa.text("UPDATE outbound SET attempts = 29 WHERE rcpt = :a"), {"a": full})
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port)
    try:
        helpers.wait_until(lambda: len(events(engine)) == 1, what="the given-up row recorded")
        assert events(engine) == [("smtp", "temporary", "scored", "4.2.2")]
        assert score(engine, SLUG, full) == (0.5, "active")
        assert score(engine, SLUG, later) is None
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT rcpt, state FROM outbound")).all()
        states = {str(r[0]): str(r[1]) for r in rows}
        assert states[full] == QueueState.FAILED and states[later] == QueueState.QUEUED
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
