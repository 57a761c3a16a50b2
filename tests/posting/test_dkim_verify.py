"""The daemon's own DKIM verification (`authenticated` approval), against a real DNS server
on loopback that publishes keys made at test time. Nothing a sender writes counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

import pytest

from dnsserver import DnsServer, SigningKey, dns_server, make_key
from haishin.posting.dkim_verify import (
    MAX_AGE,
    MAX_SIGNATURES,
    Addressed,
    DkimResult,
    Verification,
    verify,
)
from haishin.posting.dnskeys import DnsSettings, KeyLookup

SENDER = "shogai@city.kawasaki.example.jp"
DOMAIN = "city.kawasaki.example.jp"
MAIL_DOMAIN = f"mail.{DOMAIN}"  # the service's: the daemon signs its fan-out with it
TO = Addressed(f"shogai-gakushu@{MAIL_DOMAIN}", MAIL_DOMAIN)
FORGED_AR = "mx.city.kawasaki.example.jp; dkim=pass header.d=city.kawasaki.example.jp"


@dataclass(frozen=True)
class World:
    dns: DnsServer
    good: SigningKey  # published for the city's domain
    sub: SigningKey  # a subdomain of the city: aligned (relaxed)
    own: SigningKey  # the service's mail domain: the daemon's own signature
    evil: SigningKey  # published for another organization
    revoked: SigningKey  # its record has an empty p=
    missing: SigningKey  # never published (NXDOMAIN)
    slow: SigningKey  # its nameserver never answers
    broken: SigningKey  # its nameserver answers SERVFAIL

    def keys(self, lifetime: float = 1.0) -> KeyLookup:
        return KeyLookup(DnsSettings((("127.0.0.1", self.dns.port),), 0.5, lifetime))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with dns_server() as dns:
        w = World(
            dns,
            make_key(DOMAIN),
            make_key(f"kouhou.{DOMAIN}", "s2026"),
            make_key(MAIL_DOMAIN, "rsa"),
            make_key("attacker.example.org"),
            make_key(DOMAIN, "revoked"),
            make_key(DOMAIN, "missing"),
            make_key(DOMAIN, "slow"),
            make_key(DOMAIN, "broken"),
        )
        for key in (w.good, w.sub, w.own, w.evil):
            dns.publish(key.name, key.public_txt)
        dns.publish(w.revoked.name, b"v=DKIM1; k=rsa; p=")  # RFC 6376 §3.6.1: revoked
        dns.zone.silent.add(w.slow.name)
        dns.zone.servfail.add(w.broken.name)
        yield w


def post(
    sender: str = SENDER,
    body: str = "講座のご案内です。\n",
    to: str = TO.post_address,
    **headers: str,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "講座のご案内"
    msg["Date"] = "Tue, 01 Dec 2026 10:00:00 +0900"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def check(
    world: World,
    raw: bytes,
    sender: str = SENDER,
    lifetime: float = 1.0,
    now: float | None = None,
) -> Verification:
    return asyncio.run(verify(raw, sender, world.keys(lifetime), TO, now))


def test_a_signature_with_the_published_key_passes(world: World) -> None:
    v = check(world, world.good.sign(post()))
    assert v.result is DkimResult.PASS, v
    assert v.domain == DOMAIN
    assert "検証しました" in v.detail
    assert world.good.name in world.dns.zone.queries  # the key came from our DNS server


def test_a_subdomain_signature_is_aligned(world: World) -> None:
    assert check(world, world.sub.sign(post())).result is DkimResult.PASS


def test_a_forged_authentication_results_header_is_no_evidence(world: World) -> None:
    """The attack of issue 11: the exact authserv-id, topmost, aligned domain."""
    v = check(world, post(Authentication_Results=FORGED_AR))
    assert v.result is DkimResult.NONE
    assert v.detail == "DKIM 署名がありません"


def test_a_forged_header_beside_a_bad_signature_changes_nothing(world: World) -> None:
    raw = world.good.sign(post())
    tampered = b"Authentication-Results: " + FORGED_AR.encode() + b"\r\n" + raw
    tampered = tampered.replace(b"Subject:", b"Subject: [x]", 1)
    assert check(world, tampered).result is DkimResult.FAIL


def test_a_valid_signature_of_another_domain_is_not_aligned(world: World) -> None:
    v = check(world, world.evil.sign(post()))
    assert v.result is DkimResult.NONE
    assert "d=attacker.example.org が From のドメインと揃っていません" in v.detail


def test_a_tampered_body_fails(world: World) -> None:
    raw = world.good.sign(post())
    v = check(world, raw.replace(b"\r\n\r\n", b"\r\n\r\nURGENT: https://evil.example/\r\n", 1))
    assert v.result is DkimResult.FAIL
    assert "署名の後に本文が変わっています" in v.detail


def test_a_revoked_key_fails(world: World) -> None:
    v = check(world, world.revoked.sign(post()))
    assert v.result is DkimResult.FAIL
    assert "鍵が失効しています" in v.detail


def test_a_key_that_is_not_in_dns_fails(world: World) -> None:
    v = check(world, world.missing.sign(post()))
    assert v.result is DkimResult.FAIL
    assert "鍵がありません" in v.detail


def test_a_dns_time_out_is_temporary_and_bounded(world: World) -> None:
    started = time.monotonic()
    v = check(world, world.slow.sign(post()), lifetime=0.8)
    assert time.monotonic() - started < 3
    assert v.result is DkimResult.TEMPORARY
    assert "一時的な障害" in v.detail and "時間切れ" in v.detail


def test_servfail_is_temporary(world: World) -> None:
    v = check(world, world.broken.sign(post()))
    assert v.result is DkimResult.TEMPORARY
    assert "一時的な障害" in v.detail


def test_several_from_addresses_are_not_authenticated(world: World) -> None:
    two = f"{SENDER}, someone@attacker.example.org"
    assert check(world, world.good.sign(post(sender=two))).result is DkimResult.NONE
    # a second From header (the signature names From once; dkimpy signs the first)
    raw = world.good.sign(post())
    doubled = raw.replace(b"From:", b"From: someone@attacker.example.org\r\nFrom:", 1)
    v = check(world, doubled)
    assert v.result is DkimResult.NONE
    assert "From ヘッダーが 2 個" in v.detail


def test_from_must_be_the_listed_sender(world: World) -> None:
    raw = world.good.sign(post(sender=f"other@{DOMAIN}"))
    v = check(world, raw)
    assert v.result is DkimResult.NONE
    assert "登録された送信者と一致しません" in v.detail


def test_a_signature_over_part_of_the_body_does_not_count(world: World) -> None:
    """RFC 6376 §8.2: with l=, text appended after signing is unsigned."""
    raw = world.good.sign(post(), length=True)
    assert b"l=" in raw.split(b"\r\n\r\n")[0]
    assert check(world, raw).result is DkimResult.PASS  # l= covering the whole body is harmless
    appended = raw + "追記: 偽の案内 https://evil.example/\r\n".encode()
    v = check(world, appended)
    assert v.result is DkimResult.FAIL
    assert "本文の一部（l=）" in v.detail


def test_a_signature_that_does_not_sign_from_does_not_count(world: World) -> None:
    raw = world.good.sign(post(), include_headers=[b"from", b"subject"])
    # RFC 6376 §5.4: From MUST be signed; dkimpy enforces it only when signing
    assert b"h=from : subject;" in raw
    raw = raw.replace(b"h=from : subject;", b"h=subject;", 1)
    v = check(world, raw)
    assert v.result is DkimResult.NONE
    assert "From ヘッダーのすべてに署名していません" in v.detail


def test_any_aligned_valid_signature_is_enough(world: World) -> None:
    raw = world.good.sign(world.evil.sign(world.revoked.sign(post())))
    assert check(world, raw).result is DkimResult.PASS
    # the valid one below a broken one counts as well
    raw = world.missing.sign(world.good.sign(post()))
    assert check(world, raw).result is DkimResult.PASS


def test_signatures_beyond_the_limit_cost_no_lookup(world: World) -> None:
    raw = world.good.sign(post())
    for _ in range(MAX_SIGNATURES):
        raw = world.missing.sign(raw)
    before = len(world.dns.zone.queries)
    v = check(world, raw)
    assert v.result is DkimResult.FAIL
    assert len(world.dns.zone.queries) - before <= MAX_SIGNATURES


def test_rsa_sha1_does_not_count(world: World) -> None:
    v = check(world, world.good.sign(post(), signature_algorithm=b"rsa-sha1"))
    assert v.result is DkimResult.NONE
    assert "rsa-sha1" in v.detail


def test_a_garbage_key_record_fails(world: World) -> None:
    key = make_key(DOMAIN, "garbage")
    world.dns.publish(key.name, b"v=DKIM1; k=rsa; p=bm90IGEga2V5")
    v = check(world, key.sign(post()))
    assert v.result is DkimResult.FAIL
    assert f"{key.name} の鍵を読み取れません" in v.detail


@pytest.mark.parametrize(
    "signature",
    [
        "garbage",
        "v=1; a=rsa-sha256; d=city.kawasaki.example.jp; s=sel; h=from; bh=!!; b=!!",
        "v=1; a=rsa-sha256; d=" + "a" * 300 + ".kawasaki.example.jp; s=sel; h=from; bh=; b=",
        "v=1; a=rsa-sha256; d=city.kawasaki.example.jp; s=sel\x00; h=from; bh=x; b=x",
        "v=1; a=rsa-sha256; d=city.kawasaki.example.jp; s=" + "x\x01" * 400 + "; h=from; bh=x; b=x",
        "v=1; a=rsa-sha256; d=city\x00.kawasaki.example.jp; s=sel; h=from; bh=x; b=x",
    ],
)
def test_hostile_signatures_are_results(world: World, signature: str) -> None:
    raw = b"DKIM-Signature: " + signature.encode() + b"\r\n" + post()
    v = check(world, raw)
    assert v.result in (DkimResult.NONE, DkimResult.FAIL)
    assert v.detail.isprintable() and len(v.detail) <= 600


def test_a_bare_cr_hiding_a_from_in_one_dkimpy_header_is_not_authenticated(world: World) -> None:
    """The attacker's finding: Python's parser ends a line at a bare CR, dkimpy does not.
    Put above a genuine city-signed mail of an employee who is not a listed sender, one
    dkimpy header `X-B` holds the From, Subject and text Python reads."""
    signed = world.good.sign(post(sender=f"tanaka@{DOMAIN}"))
    smuggled = (
        f"X-B: a\rFrom: {SENDER}\rSubject: 【重要】市からのお知らせ\rX-A: b\r\r\n".encode()
        + " 【緊急】https://evil.example/ で口座を登録してください\r\n".encode()
        + signed
    )
    v = check(world, smuggled, sender=SENDER)
    assert v.result is DkimResult.NONE, v
    assert "単独の CR" in v.detail
    # a bare CR anywhere, the body too, is refused: the check runs before either parser
    in_body = world.good.sign(post()).replace(b"\r\n\r\n", b"\r\n\r\nA\rB\r\n", 1)
    v = check(world, in_body)
    assert v.result is DkimResult.NONE and "単独の CR" in v.detail


ONCE = [b"from", b"to", b"subject", b"date", b"mime-version", b"content-type"]
ONCE += [b"content-transfer-encoding"]  # each header of post() named once in h=


def test_an_unsigned_subject_above_a_signed_mail_is_not_authenticated(world: World) -> None:
    """h=subject signs the bottom-most Subject (RFC 6376 §5.4.2); the post path reads the
    top one. Every instance must be signed (§8.15)."""
    prepended = "Subject: 【重要】攻撃者の件名\r\n".encode()
    once = world.good.sign(post(), include_headers=ONCE)
    assert check(world, once).result is DkimResult.PASS
    v = check(world, prepended + once)
    assert v.result is DkimResult.NONE
    assert "Subject ヘッダーのすべてに署名していません" in v.detail
    # oversigned as OpenDKIM does (h= names subject twice): the added one breaks the hash
    oversigned = world.good.sign(post())
    assert check(world, oversigned).result is DkimResult.PASS
    assert check(world, prepended + oversigned).result is DkimResult.FAIL


def test_a_header_the_post_path_reads_must_be_signed(world: World) -> None:
    # Content-Type decides how the signed body reads: unsigned, it could be replaced
    v = check(world, world.good.sign(post(), include_headers=[b"from", b"to", b"subject"]))
    assert v.result is DkimResult.NONE
    assert "ヘッダーのすべてに署名していません" in v.detail
    # Subject is always signed, even when absent (RFC 6376 §5.4: h= may name a missing one)
    no_subject = post().replace(b"Subject:", b"X-Subject:", 1)
    v = check(world, world.good.sign(no_subject, include_headers=[b"from", b"to"]))
    assert v.result is DkimResult.NONE and "Subject ヘッダー" in v.detail


def test_the_services_own_signature_is_not_the_senders(world: World) -> None:
    """d=<mail domain> is aligned with the city's From, but it is the daemon's fan-out
    signature: a subscriber resending a post cannot make it a sender's."""
    v = check(world, world.own.sign(post()))
    assert v.result is DkimResult.NONE
    assert f"d={MAIL_DOMAIN} は配信サービス自身の署名" in v.detail


def test_a_signed_mail_to_someone_else_is_no_post(world: World) -> None:
    v = check(world, world.good.sign(post(to="someone@example.net")))
    assert v.result is DkimResult.NONE
    assert f"投稿アドレス {TO.post_address} がありません" in v.detail
    # Cc naming the channel is a post too
    raw = post(to="someone@example.net", Cc=f"広報 <{TO.post_address}>")
    assert check(world, world.good.sign(raw)).result is DkimResult.PASS


def test_an_old_signature_is_a_replay(world: World) -> None:
    raw = world.good.sign(post())
    assert b"t=" in raw.split(b"\r\n\r\n")[0]
    assert check(world, raw, now=time.time() + MAX_AGE - 3600).result is DkimResult.PASS
    v = check(world, raw, now=time.time() + MAX_AGE + 3600)
    assert v.result is DkimResult.NONE
    assert "日以上前のものです（t=）" in v.detail
