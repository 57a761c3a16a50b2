"""Does a post carry a DKIM signature that the daemon itself can verify, aligned with From?

This is the only evidence the `authenticated` approval mode accepts (design.md: nothing a
sender writes is evidence of who sent it). Authentication-Results headers that arrived
with the message are never read: anyone can write one, whatever authserv-id it names.

The rules, in order (each a reason in Japanese for the sender and the audit):

| check | source | outcome when it fails |
|---|---|---|
| no bare CR (a \\r not followed by \\n) anywhere: Python's parser ends a line there, dkimpy's does not, so one dkimpy header could hide a From the post path reads | RFC 5322 §2.3, RFC 5321 §2.3.8 | none |
| Python's parser and dkimpy's see the same header fields in the same order | (the same differential, guarded in general) | none |
| exactly one From header with one address, the listed sender | RFC 7489 §6.6.1 | none |
| To or Cc names the channel's post address `<slug>@<mail domain>` (an old signed mail to someone else is no post) | RFC 5322 §3.6.3 | none |
| a DKIM-Signature whose d= is aligned with the From domain | RFC 7489 §3.1.1 (relaxed) | none |
| d= is not the service's own mail domain (the daemon signs its fan-out with it: that is our signature, not the sender's) | RFC 6376 §3.5 (d= names the signer) | none |
| not rsa-sha1 | RFC 8301 §3.1 | none |
| its h= includes From and Subject | RFC 6376 §5.4 (dkimpy checks From only when signing) | none |
| every instance of each header the post path reads (SIGNED_HEADERS) is signed: as many in h= as in the message ("oversigning") | RFC 6376 §5.4.2, §8.15 | none |
| t=, when given, no older than MAX_AGE (x= is dkimpy's) | RFC 6376 §3.5 t=, §8.6 replay | none |
| no l= shorter than the body (else text could be appended unsigned) | RFC 6376 §8.2 | fail |
| the key from DNS exists and is not revoked (empty p=) | RFC 6376 §3.6.1 | fail |
| the key lookup answered at all | RFC 6376 §6.1.2 TEMPFAIL | temporary |
| body hash and signature verify (dkimpy) | RFC 6376 §6.1.3 | fail |

Any one aligned signature that passes is enough (RFC 6376 §6.1: signatures are
independent); at most MAX_SIGNATURES are looked at, so a message stuffed with signatures
costs a bounded number of lookups.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.parser import BytesHeaderParser

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import parse_tag_value

from ..clock import epoch_seconds
from .dnskeys import Found, KeyLookup, KeyRecord
from .policy.base import PostVerdict
from .senders import aligned, same_address

MAX_SIGNATURES = 5

MAX_AGE = 7 * 24 * 3600
"""Seconds a signature's t= may lie in the past: a post is sent when written, and an old
signed mail resent to the channel is a replay (RFC 6376 §8.6)."""

SIGNED_HEADERS = (
    b"from",
    b"subject",
    b"to",
    b"cc",
    b"reply-to",
    b"date",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"x-haishin-send-at",
    b"in-reply-to",
    b"references",
)
"""The headers the post path reads (commands/post.py, mailtext/incoming.py): an unsigned
instance of one, e.g. a second Subject put on top of a signed mail, would be what the
post shows while dkimpy verifies the signed one (RFC 6376 §5.4.2: the bottom-most).
Message-ID is not among them: it only threads our answers, and an MTA on the way adds
one when the mail has none (RFC 5321 §6.4), after the signature."""

_BARE_CR = re.compile(rb"\r(?!\n)")

_quiet = logging.getLogger("haishin.dkim")  # dkimpy logs each failure at error level
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class DkimResult(enum.StrEnum):
    """The daemon's own verification (the RFC 8601 dkim result, reduced to what counts)."""

    PASS = "pass"
    FAIL = "fail"  # a signature was there and is wrong, or its key is gone
    NONE = "none"  # nothing that could have proved the sender
    TEMPORARY = "temporary"  # the key could not be looked up now


@dataclass(frozen=True)
class Verification:
    result: DkimResult
    detail: str
    domain: str = ""

    def finding(self) -> dict[str, str]:
        """The record kept with the post (posts.findings, the audit)."""
        verdict = PostVerdict.PASS if self.result is DkimResult.PASS else PostVerdict.WARN
        return {"rule": "dkim", "verdict": verdict, "message": f"DKIM {self.result}: {self.detail}"}


@dataclass(frozen=True)
class Addressed:
    """What a post must be addressed to, and whose signature is not the sender's."""

    post_address: str  # <slug>@<mail domain>: a post is a mail to the channel
    own_domain: str  # the service's mail domain, d= of the daemon's own fan-out


@dataclass(frozen=True)
class _Candidate:
    index: int
    domain: str
    selector: str
    name: str


def _from_domain(head: EmailMessage, sender: str) -> str | Verification:
    values = head.get_all("From") or []
    if len(values) != 1:
        return Verification(DkimResult.NONE, f"From ヘッダーが {len(values)} 個あります")
    header = values[0]
    addresses = header.addresses if isinstance(header, AddressHeader) else ()
    if len(addresses) != 1:
        # RFC 7489 §6.6.1: with several authors there is no one domain to align with
        return Verification(
            DkimResult.NONE, "From に複数のアドレス（または読めないアドレス）があります"
        )
    address = addresses[0].addr_spec
    if not same_address(address, sender):
        return Verification(DkimResult.NONE, "From のアドレスが登録された送信者と一致しません")
    return address.rpartition("@")[2].lower()


def _addressed(head: EmailMessage, post_address: str) -> Verification | None:
    """None when To or Cc names the channel's post address."""
    for name in ("To", "Cc"):
        for header in head.get_all(name) or []:
            addresses = header.addresses if isinstance(header, AddressHeader) else ()
            if any(a.addr_spec.lower() == post_address.lower() for a in addresses):
                return None
    return Verification(
        DkimResult.NONE, f"宛先（To/Cc）にチャンネルの投稿アドレス {post_address} がありません"
    )


def _unsigned(tags: dict[bytes, bytes], present: Counter[bytes]) -> str | None:
    """The first header read by the post path that the signature leaves open, if any."""
    signed = Counter(h.strip().lower() for h in tags.get(b"h", b"").split(b":"))
    for name in (b"from", b"subject"):
        if not signed[name]:
            return name.decode()
    for name in SIGNED_HEADERS:
        if present[name] > signed[name]:
            return name.decode()
    return None


def _candidates(
    signer: dkim.DKIM, from_domain: str, to: Addressed, now: float
) -> tuple[list[_Candidate], list[str]]:
    found: list[_Candidate] = []
    reasons: list[str] = []
    present = Counter(k.strip().lower() for k, _ in signer.headers)
    own = to.own_domain.lower().rstrip(".")
    headers = [v for k, v in signer.headers if k.lower() == b"dkim-signature"]
    for index, value in enumerate(headers[:MAX_SIGNATURES]):
        try:
            tags = parse_tag_value(value)
            domain = tags[b"d"].decode("ascii").lower()
            selector = tags[b"s"].decode("ascii").lower()
        except Exception:  # dkimpy raises its own and KeyError/UnicodeError on garbage
            reasons.append("読み取れない DKIM 署名があります")
            continue
        if not aligned(domain, from_domain):
            reasons.append(f"署名のドメイン d={domain} が From のドメインと揃っていません")
            continue
        if domain == own or domain.endswith("." + own):
            # the daemon's own fan-out carries this; resent, it proves nothing of the sender
            reasons.append(f"d={domain} は配信サービス自身の署名で、送信者の署名ではありません")
            continue
        if tags.get(b"a", b"").strip().lower() == b"rsa-sha1":
            # RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying
            reasons.append(f"d={domain} の署名は使えない方式（rsa-sha1）です")
            continue
        unsigned = _unsigned(tags, present)
        if unsigned is not None:
            reasons.append(
                f"d={domain} の署名は {unsigned.title()} ヘッダーのすべてに署名していません（h=）"
            )
            continue
        stamp = tags.get(b"t", b"").strip()
        if stamp.isdigit() and int(stamp) < now - MAX_AGE:
            reasons.append(f"d={domain} の署名は {MAX_AGE // 86400} 日以上前のものです（t=）")
            continue
        found.append(_Candidate(index, domain, selector, f"{selector}._domainkey.{domain}"))
    return found, reasons


def _check(raw: bytes, candidate: _Candidate, key: bytes) -> str | None:
    """None when the signature verifies, else why not. Thread context (hashing, RSA)."""
    signer = dkim.DKIM(raw, logger=_quiet, minkey=1024)
    value = [v for k, v in signer.headers if k.lower() == b"dkim-signature"][candidate.index]
    tags = parse_tag_value(value)
    if b"l" in tags:
        c = CanonicalizationPolicy.from_c_value(tags.get(b"c", b"simple/simple"))
        if int(tags[b"l"]) < len(c.canonicalize_body(signer.body)):
            # RFC 6376 §8.2: text after l= is unsigned, so anyone could append to the post
            return f"d={candidate.domain} の署名は本文の一部（l=）にしか署名していません"
    try:
        dkim.evaluate_pk(candidate.name.encode(), key)  # dkimpy's verify hides why
    except dkim.DKIMException as exc:
        return f"{candidate.name} の鍵を読み取れません（{type(exc).__name__}）"
    try:
        ok = signer.verify(idx=candidate.index, dnsfunc=lambda name, timeout=5: key)
    except dkim.DKIMException as exc:
        if "body hash" in str(exc):
            return f"署名の後に本文が変わっています（d={candidate.domain}）"
        return f"d={candidate.domain} の署名を検証できません（{exc}）"
    return None if ok else f"署名が一致しません（d={candidate.domain}）"


def _revoked(txt: bytes) -> bool:
    try:
        tags = parse_tag_value(txt)
    except Exception:  # an unreadable record is left to dkimpy, which reports it
        return False
    return b"p" in tags and not tags[b"p"].strip()


def _prepare(
    raw: bytes, sender: str, to: Addressed, now: float
) -> tuple[list[_Candidate], list[str]] | Verification:
    """The message checks and the signatures worth a lookup. Thread context."""
    if _BARE_CR.search(raw):
        # RFC 5322 §2.3, RFC 5321 §2.3.8: CR only in CRLF. Checked before either parser
        # reads the mail: they split lines differently at a bare CR.
        return Verification(
            DkimResult.NONE, "メールに改行（CRLF）でない単独の CR が含まれています（RFC 5322 §2.3）"
        )
    try:
        head = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        assert isinstance(head, EmailMessage)  # policy.default's message factory
        signer = dkim.DKIM(raw, logger=_quiet)
        ours = [k.lower() for k in head]
        theirs = [k.decode("ascii", "surrogateescape").strip().lower() for k, _ in signer.headers]
        if ours != theirs:
            # what dkimpy verifies must be the header block the post path reads
            return Verification(DkimResult.NONE, "ヘッダーの区切りを一通りに読み取れません")
        from_domain = _from_domain(head, sender)
        if isinstance(from_domain, Verification):
            return from_domain
        wrong = _addressed(head, to.post_address)
        if wrong is not None:
            return wrong
        return _candidates(signer, from_domain, to, now)
    except Exception as exc:  # email and dkimpy raise many kinds on hostile headers
        return Verification(DkimResult.NONE, f"署名を読み取れません（{type(exc).__name__}）")


def _clean(text: str, limit: int = 600) -> str:
    """Reasons quote what the signature says (d=, s=, dkimpy's message): no control
    character (PostgreSQL refuses NUL in text; the reason goes into a mail) and bounded."""
    shown = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


async def verify(
    raw: bytes, sender: str, keys: KeyLookup, to: Addressed, now: float | None = None
) -> Verification:
    """The daemon's own verdict on `raw` posted by `sender` (a listed sender) to the
    channel `to` names; `now` (epoch seconds) bounds t=."""
    found = await _verify(raw, sender, keys, to, epoch_seconds() if now is None else now)
    return Verification(found.result, _clean(found.detail), _clean(found.domain, 255))


async def _verify(
    raw: bytes, sender: str, keys: KeyLookup, to: Addressed, now: float
) -> Verification:
    prepared = await asyncio.to_thread(_prepare, raw, sender, to, now)  # parsing: off the loop
    if isinstance(prepared, Verification):
        return prepared
    candidates, reasons = prepared
    if not candidates:
        return Verification(DkimResult.NONE, "、".join(reasons) or "DKIM 署名がありません")
    records: list[KeyRecord] = await asyncio.gather(*(keys.txt(c.name) for c in candidates))
    temporary: list[str] = []
    for candidate, record in zip(candidates, records, strict=True):
        if record.found is Found.TEMPORARY:
            temporary.append(record.detail)
            continue
        if record.found is Found.NO_KEY:
            reasons.append(record.detail)
            continue
        if _revoked(record.txt):
            reasons.append(f"署名の鍵が失効しています（{candidate.name} の p= が空）")
            continue
        try:
            why = await asyncio.to_thread(_check, raw, candidate, record.txt)
        except Exception as exc:  # a key or signature dkimpy cannot read
            why = f"d={candidate.domain} の署名を検証できません（{type(exc).__name__}）"
        if why is None:
            detail = f"DKIM 署名を検証しました（d={candidate.domain}、s={candidate.selector}）"
            return Verification(DkimResult.PASS, detail, candidate.domain)
        reasons.append(why)
    if temporary:
        # a key we could not fetch might have verified: neither a pass nor a fail
        why = "署名の鍵を DNS で確認できませんでした（一時的な障害: " + "、".join(temporary) + "）"
        return Verification(DkimResult.TEMPORARY, why)
    return Verification(DkimResult.FAIL, "、".join(reasons))
