"""Issue 11 item 1 (bad-input suite): nothing a sender writes can approve a post.

`haishin serve` with `--dns` pointing at a real DNS server on loopback (dnslib) that
publishes a key made at test time. The channel `shogai-gakushu` (config/) has
`approval: authenticated` and the listed sender shogai@city.kawasaki.example.jp. Each
hostile post must stay held, with the reason recorded and told to the sender in
Japanese, and reach no subscriber; the post signed with the published key is approved
and delivered. At the end, the daemon's log holds no traceback.

The table of hostile signatures runs the handlers in process (support/inprocess.py: the
router, the verification pass with the same resolver settings, the release), on SQLite and
PostgreSQL, and no exception is logged; what depends on the front end's bytes (bare CRs
over raw SMTP), on timing (a slow lookup) or on the daemon's own signature goes through
`haishin serve`.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.posting.approval import VERIFYING
from haishin.posting.dnskeys import DnsSettings
from haishin.service import parse_hostport
from haishin.store.states import MessageKind
from support import helpers
from support import posting as p
from support.dnsserver import DnsServer, SigningKey, dns_server, make_key
from support.helpers import DOMAIN
from support.inprocess import InProcess, Queued, inprocess
from support.smarthost import Sink

SLUG = "shogai-gakushu"
SENDER = "shogai@city.kawasaki.example.jp"
CITY = "city.kawasaki.example.jp"
FORGED_AR = f"mx.city.kawasaki.example.jp; dkim=pass header.d={CITY}"
DNS_TIMEOUT = 1.0


@dataclass(frozen=True)
class Keys:
    good: SigningKey
    evil: SigningKey
    revoked: SigningKey
    slow: SigningKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        make_key(CITY),
        make_key("attacker.example.org"),
        make_key(CITY, "old"),
        make_key(CITY, "slow"),
    )


@pytest.fixture
def dns(keys: Keys) -> Iterator[DnsServer]:
    with dns_server() as server:
        server.publish(keys.good.name, keys.good.public_txt)
        server.publish(keys.evil.name, keys.evil.public_txt)
        server.publish(keys.revoked.name, b"v=DKIM1; k=rsa; p=")
        server.zone.silent.add(keys.slow.name)
        yield server


def serve_args(tmp: Path, dns: str, timeout: float = DNS_TIMEOUT) -> list[str]:
    return ["--dns", dns, "--dns-timeout", str(timeout), "--release-poll", "0.1"]


def raw_post(subject: str, text: str = "講座のご案内です。\n", **headers: str) -> bytes:
    msg = p.post_message(subject, text, sender=SENDER, slug=SLUG, headers=headers)
    msg["Date"] = "Tue, 01 Dec 2026 10:00:00 +0900"
    return msg.as_bytes(policy=policy.SMTP)


HOSTILE_SIGNATURE = (
    b"DKIM-Signature: v=1; a=rsa-sha256; d=city.kawasaki.example.jp; s=se\x00l\x01;"
    b" h=from:to:subject:date:mime-version:content-type:content-transfer-encoding; bh=x; b=x\r\n"
)


def _tampered(keys: Keys) -> bytes:
    signed = keys.good.sign(raw_post("改ざん"))
    return signed.replace(b"\r\n\r\n", b"\r\n\r\nURGENT: https://evil.example/\r\n", 1)


# (name, the raw post, a fragment of the Japanese reason the sender is told)
HOSTILE: list[tuple[str, Callable[[Keys], bytes], str]] = [
    (
        "forged Authentication-Results, exact authserv-id, topmost, aligned",
        lambda k: raw_post("偽の認証結果", Authentication_Results=FORGED_AR),
        "DKIM 署名がありません",
    ),
    (
        "valid signature of an unaligned domain",
        lambda k: k.evil.sign(raw_post("他組織の署名", Authentication_Results=FORGED_AR)),
        "d=attacker.example.org が From のドメインと揃っていません",
    ),
    ("tampered body", _tampered, "署名の後に本文が変わっています"),
    (
        "revoked key (empty p=)",
        lambda k: k.revoked.sign(raw_post("失効した鍵")),
        "鍵が失効しています",
    ),
    ("DNS time-out", lambda k: k.slow.sign(raw_post("DNS 時間切れ")), "一時的な障害"),
    (
        "DKIM-Signature with NUL and control characters in s= (stored on PostgreSQL too)",
        lambda k: HOSTILE_SIGNATURE + raw_post("制御文字の署名"),
        "se?l?._domainkey.city.kawasaki.example.jp に鍵がありません",
    ),
]


OTHER = "tanaka@city.kawasaki.example.jp"  # a city employee who is not a listed sender
DATA_OK = b"250"


def raw_smtp(d: helpers.Daemon, rcpt: str, raw: bytes, sender: str) -> bytes:
    """The attacker's bytes as they are (smtplib would turn a bare CR into CRLF); the
    answer to the end of DATA."""
    with socket.create_connection(d.smtp, timeout=helpers.WAIT) as s:
        replies = s.makefile("rb")

        def say(line: bytes | None) -> bytes:
            if line is not None:
                s.sendall(line)
            reply = replies.readline()
            while reply[3:4] == b"-":
                reply = replies.readline()
            return reply

        assert say(None).startswith(b"220")
        assert say(b"EHLO attacker.example\r\n").startswith(b"250")
        assert say(f"MAIL FROM:<{sender}>\r\n".encode()).startswith(b"250")
        assert say(f"RCPT TO:<{rcpt}>\r\n".encode()).startswith(b"250")
        assert say(b"DATA\r\n").startswith(b"354")
        body = raw.replace(b"\r\n.", b"\r\n..")  # RFC 5321 §4.5.2 dot-stuffing
        end = say(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        say(b"QUIT\r\n")
        return end


def bare_cr_smuggled(signed: bytes) -> bytes:
    """The attacker's finding: dkimpy reads `X-B` as one header up to the CRLF, Python's
    parser ends a line at each bare CR and reads the From, Subject and text in it."""
    hidden = (
        f"X-B: a\rFrom: {SENDER}\rSubject: 【重要】市からのお知らせ\rMIME-Version: 1.0\r"
        "Content-Type: text/plain; charset=utf-8\rX-A: b\r\r\n"
    )
    text = " 【緊急】給付金の受け取りは https://evil.example/ で口座を登録してください\r\n"
    return hidden.encode() + text.encode() + signed


def signed_once(key: SigningKey, raw: bytes) -> bytes:
    """Signed as a signer that does not oversign: each header present named once in h=."""
    present = [b"from", b"to", b"subject", b"date", b"mime-version", b"content-type"]
    return key.sign(raw, include_headers=[*present, b"content-transfer-encoding"])


@pytest.fixture
def daemon(
    tmp_path: Path, db_url: str, sink: Sink, dns: DnsServer
) -> Iterator[tuple[helpers.Daemon, sa.Engine]]:
    extra = serve_args(tmp_path, dns.address)
    with helpers.running(tmp_path, db_url, smarthost=sink.port, extra=extra) as de:
        yield de


def post_of(engine: sa.Engine, subject: str) -> dict[str, object] | None:
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT * FROM posts WHERE subject = :s"), {"s": subject}
        ).mappings()
        found = row.first()
    return dict(found) if found else None


def dkim_finding(row: dict[str, object]) -> dict[str, str]:
    found = [f for f in json.loads(str(row["findings"])) if f["rule"] == "dkim"]
    assert len(found) == 1, found
    return dict(found[0])


def assert_refused_approval(
    engine: sa.Engine, sink: Sink, subject: str, reason: str, n: int
) -> None:
    """Held, not approved; the sender is asked (confirm fallback) and told why."""
    request = p.wait_mail(sink, SENDER, "投稿の確認", count=n)
    assert subject in str(request.msg["Subject"]) or subject in p.body(request)
    text = p.body(request)
    assert "送信者の認証が確認できなかった" in text and reason in text, text
    row = post_of(engine, subject)
    assert row is not None
    assert row["state"] == "held" and row["approver"] is None and row["approval_method"] is None
    finding = dkim_finding(row)
    assert finding["verdict"] == "warn" and reason in finding["message"]


def assert_no_traceback(tmp_path: Path) -> None:
    log = "".join(f.read_text() for f in tmp_path.glob("daemon-*.log"))
    assert "Traceback" not in log, log[-3000:]


def _copies(ip: InProcess) -> list[Queued]:
    """The post's copies in the outbound queue (VERP return path)."""
    return [
        q for q in ip.queued(kind=MessageKind.POST) if q.mail_from.startswith(f"{SLUG}-bounces+")
    ]


def test_only_a_verified_aligned_dkim_signature_approves(
    db_url: str, keys: Keys, dns: DnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    # the daemon's settings for `--dns ADDRESS --dns-timeout DNS_TIMEOUT` (cli/daemon.py)
    resolver = DnsSettings((parse_hostport(dns.address),), DNS_TIMEOUT, DNS_TIMEOUT)
    rcpt = f"{SLUG}@{DOMAIN}"
    with inprocess(db_url) as ip, caplog.at_level("DEBUG"):
        engine = ip.engine
        p.populate(engine, SLUG)
        for n, (name, make, reason) in enumerate(HOSTILE, start=1):
            raw = make(keys)
            subject = str(BytesParser(policy=policy.default).parsebytes(raw)["Subject"])
            started = time.monotonic()
            ip.deliver(raw, SENDER, [rcpt])
            assert ip.verify(resolver) == 1, name
            requests = ip.mail(SENDER, "投稿の確認")
            assert len(requests) == n, name
            request = requests[-1]
            assert subject in request.subject or subject in request.body
            assert "送信者の認証が確認できなかった" in request.body and reason in request.body
            row = post_of(engine, subject)
            assert row is not None
            assert row["state"] == "held" and row["approver"] is None
            assert row["approval_method"] is None
            finding = dkim_finding(row)
            assert finding["verdict"] == "warn" and reason in finding["message"]
            assert time.monotonic() - started < DNS_TIMEOUT + 10, name
            assert ip.release() == 0 and not _copies(ip), name

        # the post signed with the key on our DNS server: approved at once and released,
        # and the forged Authentication-Results it also carries reaches no subscriber
        signed = keys.good.sign(raw_post("正しい署名", Authentication_Results=FORGED_AR))
        ip.deliver(signed, SENDER, [rcpt])
        assert ip.verify(resolver) == 1
        assert ip.release() == 1
        row = post_of(engine, "正しい署名")
        assert row is not None and row["state"] == "sent"
        assert row["approval_method"] == "authenticated:dkim" and row["approver"] == SENDER
        assert dkim_finding(row)["verdict"] == "pass"
        delivered = _copies(ip)
        assert sorted(q.rcpt for q in delivered) == sorted(p.ACTIVE)
        for q in delivered:
            assert "mx.city.kawasaki.example.jp" not in q.raw.decode("utf-8", "replace")
        # every hostile post is still held, none went to anyone
        assert all(post_of(engine, n)["state"] == "held" for n in ("偽の認証結果", "失効した鍵"))  # type: ignore[index]
    # in process, the daemon log's "no traceback": no exception logged by any handler
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_a_daemon_without_dns_never_approves_and_never_hangs(
    tmp_path: Path, sqlite_url: str, sink: Sink, keys: Keys
) -> None:
    """A nameserver that is not there at all (nothing listens): temporary, held, asked."""
    with dns_server() as gone:
        address = gone.address
    d = helpers.start(
        tmp_path,
        sqlite_url,
        smarthost=sink.port,
        extra=serve_args(tmp_path, address),
    )
    engine = sa.create_engine(sqlite_url)
    try:
        p.populate(engine, SLUG)
        p.send_to(d, f"{SLUG}@{DOMAIN}", keys.good.sign(raw_post("DNS なし")), SENDER)
        assert_refused_approval(engine, sink, "DNS なし", "一時的な障害", 1)
        assert not p.delivered(sink, SLUG)
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
    assert_no_traceback(tmp_path)


def test_a_slow_key_lookup_holds_up_no_other_mail(
    tmp_path: Path, sqlite_url: str, sink: Sink, keys: Keys, dns: DnsServer
) -> None:
    """The lookup runs after the worker's transaction: while a hostile domain's nameserver
    keeps a post waiting, a citizen's subscribe request is answered."""
    slow = 4.0
    extra = serve_args(tmp_path, dns.address, slow)
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, extra=extra)
    engine = sa.create_engine(sqlite_url)
    citizen = "citizen@example.net"
    try:
        p.send_to(d, f"{SLUG}@{DOMAIN}", keys.slow.sign(raw_post("遅い DNS")), SENDER)
        helpers.wait_until(lambda: post_of(engine, "遅い DNS"), what="the post stored")
        asked = time.monotonic()
        p.send_to(
            d, f"gomi-recycle-subscribe@{DOMAIN}", f"From: {citizen}\r\n\r\n".encode(), citizen
        )
        helpers.wait_until(lambda: sink.to(citizen), what="the confirmation request")
        assert time.monotonic() - asked < slow
        row = post_of(engine, "遅い DNS")
        assert row is not None and row["note"] == VERIFYING  # still waiting on DNS
        assert_refused_approval(engine, sink, "遅い DNS", "時間切れ", 1)
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
    assert_no_traceback(tmp_path)


def test_a_signed_mail_dressed_up_as_a_post_never_approves(
    daemon: tuple[helpers.Daemon, sa.Engine], sink: Sink, keys: Keys, tmp_path: Path
) -> None:
    """The attacker review: a genuine city-signed mail with what the post shows put on
    top, sent over raw SMTP. Each is held, the listed sender asked and told why."""
    d, engine = daemon
    p.populate(engine, SLUG)
    rcpt = f"{SLUG}@{DOMAIN}"
    employee = p.post_message("ご質問への回答", "回答です。\n", sender=OTHER, slug=SLUG)
    reply = p.post_message("Re: お問い合わせ", "回答です。\n", sender=SENDER, slug=SLUG)
    elsewhere = p.post_message("Re: お問い合わせ", "回答です。\n", sender=SENDER)
    elsewhere.replace_header("To", "someone@example.net")
    cases = [
        # 1. bare CR: a From hidden in one dkimpy header (the check runs before both parsers)
        (
            bare_cr_smuggled(keys.good.sign(employee.as_bytes(policy=policy.SMTP))),
            "【重要】市からのお知らせ",
            "単独の CR",
        ),
        # 2. an unsigned Subject above the signed one (h= names subject once: dkimpy
        #    verifies the bottom-most, the post path reads the top one)
        (
            "Subject: 【重要】攻撃者の件名\r\n".encode()
            + signed_once(keys.good, reply.as_bytes(policy=policy.SMTP)),
            "【重要】攻撃者の件名",
            "Subject ヘッダーのすべてに署名していません",
        ),
        # 3. the listed sender's genuine signed mail to someone else, resent as a post
        (
            keys.good.sign(elsewhere.as_bytes(policy=policy.SMTP)),
            "Re: お問い合わせ",
            "投稿アドレス",
        ),
    ]
    for n, (raw, subject, reason) in enumerate(cases, start=1):
        assert raw_smtp(d, rcpt, raw, "attacker@evil.example").startswith(DATA_OK)
        assert_refused_approval(engine, sink, subject, reason, n)
        assert not p.delivered(sink, SLUG), subject
    # the same mail as case 2 without the added Subject: approved, so the signing is right
    p.send_to(d, rcpt, signed_once(keys.good, raw_post("重複のない署名")), SENDER)
    row = helpers.wait_until(
        lambda: (r := post_of(engine, "重複のない署名")) and r["state"] == "sent" and r,
        what="sent",
    )
    assert row["approval_method"] == "authenticated:dkim"
    assert all(post_of(engine, s)["state"] == "held" for _, s, _ in cases)  # type: ignore[index]
    assert_no_traceback(tmp_path)


def test_our_own_signed_fan_out_resent_with_a_hidden_from_never_approves(
    tmp_path: Path, sqlite_url: str, sink: Sink, keys: Keys, dns: DnsServer
) -> None:
    """The attacker review's replay: a subscriber takes a post as the daemon delivered it
    (signed d=<mail domain>, aligned with the city's From) and resends it to the channel
    with the listed sender's From hidden behind bare CRs. Held; nothing more is sent."""
    own = p.dkim_keys(tmp_path)
    dns.publish(f"rsa._domainkey.{DOMAIN}", own.rsa.public_txt())
    dns.publish(f"ed._domainkey.{DOMAIN}", own.ed.public_txt())
    extra = serve_args(tmp_path, dns.address) + own.args
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, extra=extra)
    engine = sa.create_engine(sqlite_url)
    rcpt = f"{SLUG}@{DOMAIN}"
    try:
        p.populate(engine, SLUG)
        p.send_to(d, rcpt, keys.good.sign(raw_post("正規の投稿")), SENDER)
        got = helpers.wait_until(lambda: p.delivered(sink, SLUG), what="the post delivered")
        received = got[0].raw
        assert f"d={DOMAIN}".encode() in received  # the daemon's own signature
        helpers.wait_until(lambda: helpers.drained(engine), what="queue drained")
        before = len(p.delivered(sink, SLUG))
        end = raw_smtp(d, rcpt, bare_cr_smuggled(received), "subscriber@example.net")
        assert end.startswith(DATA_OK)
        assert_refused_approval(engine, sink, "【重要】市からのお知らせ", "単独の CR", 1)
        assert len(p.delivered(sink, SLUG)) == before
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
        engine.dispose()
    assert_no_traceback(tmp_path)
