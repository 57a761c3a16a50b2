"""Who may post to a channel, and whether their mail proves it.

A From header is easy to forge, so being listed in the channel's `senders` only makes a
post eligible; approval (confirm, manager) or authentication (`authenticated` mode) is
what lets it go out (第5条: the 情報管理者 answers for what is sent).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from functools import lru_cache

import authres
from publicsuffixlist import PublicSuffixList

from ..registry.model import Channel


def same_address(a: str, b: str) -> bool:
    """Local parts compared as written (RFC 5321 §2.4), domains without case."""
    la, _, da = a.rpartition("@")
    lb, _, db = b.rpartition("@")
    return la == lb and da.lower() == db.lower()


def is_sender(channel: Channel, address: str) -> bool:
    return any(same_address(address, s) for s in channel.senders)


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the bundled list: no network at run time


def aligned(domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment (RFC 7489 §3.1): the same organizational domain."""
    psl = _psl()
    a, b = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b or (psl.privatesuffix(a) or a) == (psl.privatesuffix(b) or b)


class Proof(enum.StrEnum):
    DKIM = "dkim"
    SPF = "spf"
    NONE = "none"


@dataclass(frozen=True)
class Authentication:
    proof: Proof
    detail: str


def authenticate(msg: EmailMessage, sender: str, trusted: Iterable[str]) -> Authentication:
    """Does the topmost Authentication-Results header, added by one of our `trusted`
    servers, show DKIM or SPF pass aligned with the sender's domain?

    Only the topmost header counts: it is the one our own receiving server added (RFC 8601
    §5 requires it to remove look-alikes that came from outside); any lower one may be the
    sender's forgery.
    """
    trusted_ids = {t.lower() for t in trusted}
    raw = msg.get_all("Authentication-Results") or []
    if not raw or not trusted_ids:
        return Authentication(
            Proof.NONE, "信頼できる認証結果（Authentication-Results）がありません"
        )
    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {raw[0]}")
    except Exception:  # authres raises its own and stdlib errors on garbage
        return Authentication(Proof.NONE, "認証結果を読み取れません")
    if str(header.authserv_id).lower() not in trusted_ids:
        return Authentication(Proof.NONE, "認証結果が信頼できるサーバーのものではありません")
    from_domain = sender.rpartition("@")[2]
    for result in header.results:
        if str(result.result).lower() != "pass":
            continue
        props = {(p.type, p.name): str(p.value) for p in result.properties}
        if result.method == "dkim":
            d = props.get(("header", "d"), "")
            if d and aligned(d, from_domain):
                return Authentication(Proof.DKIM, f"DKIM pass (d={d})")
        elif result.method == "spf":
            mailfrom = props.get(("smtp", "mailfrom"), "")
            domain = mailfrom.rpartition("@")[2] or mailfrom
            if domain and aligned(domain, from_domain):
                return Authentication(Proof.SPF, f"SPF pass (smtp.mailfrom={domain})")
    return Authentication(Proof.NONE, "送信者のドメインと一致する DKIM・SPF の pass がありません")
