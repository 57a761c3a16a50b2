"""Does a post carry a DKIM signature that the daemon itself can verify, aligned with From?

This is the only evidence the `authenticated` approval mode accepts (design.md: nothing a
sender writes is evidence of who sent it). Authentication-Results headers that arrived
with the message are never read: anyone can write one, whatever authserv-id it names.

The rules, in order (each a reason in Japanese for the sender and the audit):

| check | source | outcome when it fails |
|---|---|---|
| exactly one From header with one address, the listed sender | RFC 7489 §6.6.1 | none |
| a DKIM-Signature whose d= is aligned with the From domain | RFC 7489 §3.1.1 (relaxed) | none |
| not rsa-sha1 | RFC 8301 §3.1 | none |
| its h= includes From | RFC 6376 §5.4 (dkimpy checks it only when signing) | none |
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
from dataclasses import dataclass
from email import policy
from email.headerregistry import AddressHeader
from email.parser import BytesHeaderParser

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import parse_tag_value

from .dnskeys import Found, KeyLookup, KeyRecord
from .senders import aligned, same_address

MAX_SIGNATURES = 5

_quiet = logging.getLogger("haishin.dkim")  # dkimpy logs each failure at error level
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class Result(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"  # a signature was there and is wrong, or its key is gone
    NONE = "none"  # nothing that could have proved the sender
    TEMPORARY = "temporary"  # the key could not be looked up now


@dataclass(frozen=True)
class Verification:
    result: Result
    detail: str
    domain: str = ""

    def finding(self) -> dict[str, str]:
        """The record kept with the post (posts.findings, the audit)."""
        verdict = "pass" if self.result is Result.PASS else "warn"
        return {"rule": "dkim", "verdict": verdict, "message": f"DKIM {self.result}: {self.detail}"}


@dataclass(frozen=True)
class _Candidate:
    index: int
    domain: str
    selector: str
    name: str


def _from_domain(raw: bytes, sender: str) -> str | Verification:
    head = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    values = head.get_all("From") or []
    if len(values) != 1:
        return Verification(Result.NONE, f"From ヘッダーが {len(values)} 個あります")
    header = values[0]
    addresses = header.addresses if isinstance(header, AddressHeader) else ()
    if len(addresses) != 1:
        # RFC 7489 §6.6.1: with several authors there is no one domain to align with
        return Verification(
            Result.NONE, "From に複数のアドレス（または読めないアドレス）があります"
        )
    address = addresses[0].addr_spec
    if not same_address(address, sender):
        return Verification(Result.NONE, "From のアドレスが登録された送信者と一致しません")
    return address.rpartition("@")[2].lower()


def _candidates(signer: dkim.DKIM, from_domain: str) -> tuple[list[_Candidate], list[str]]:
    found: list[_Candidate] = []
    reasons: list[str] = []
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
        if tags.get(b"a", b"").strip().lower() == b"rsa-sha1":
            # RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying
            reasons.append(f"d={domain} の署名は使えない方式（rsa-sha1）です")
            continue
        signed = [h.strip().lower() for h in re.split(rb":", tags.get(b"h", b""))]
        if b"from" not in signed:
            reasons.append(f"d={domain} の署名は From ヘッダーに署名していません（h=）")
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


def _prepare(raw: bytes, sender: str) -> tuple[list[_Candidate], list[str]] | Verification:
    """The From check and the signatures worth a lookup. Thread context."""
    try:
        from_domain = _from_domain(raw, sender)
        if isinstance(from_domain, Verification):
            return from_domain
        return _candidates(dkim.DKIM(raw, logger=_quiet), from_domain)
    except Exception as exc:  # email and dkimpy raise many kinds on hostile headers
        return Verification(Result.NONE, f"署名を読み取れません（{type(exc).__name__}）")


def _clean(text: str, limit: int = 600) -> str:
    """Reasons quote what the signature says (d=, s=, dkimpy's message): no control
    character (PostgreSQL refuses NUL in text; the reason goes into a mail) and bounded."""
    shown = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


async def verify(raw: bytes, sender: str, keys: KeyLookup) -> Verification:
    """The daemon's own verdict on `raw` posted by `sender` (a listed sender)."""
    found = await _verify(raw, sender, keys)
    return Verification(found.result, _clean(found.detail), _clean(found.domain, 255))


async def _verify(raw: bytes, sender: str, keys: KeyLookup) -> Verification:
    prepared = await asyncio.to_thread(_prepare, raw, sender)  # parsing: off the loop
    if isinstance(prepared, Verification):
        return prepared
    candidates, reasons = prepared
    if not candidates:
        return Verification(Result.NONE, "、".join(reasons) or "DKIM 署名がありません")
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
            return Verification(Result.PASS, detail, candidate.domain)
        reasons.append(why)
    if temporary:
        # a key we could not fetch might have verified: neither a pass nor a fail
        why = "署名の鍵を DNS で確認できませんでした（一時的な障害: " + "、".join(temporary) + "）"
        return Verification(Result.TEMPORARY, why)
    return Verification(Result.FAIL, "、".join(reasons))
