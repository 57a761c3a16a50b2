"""Rules per receiving provider (Sisimai's `Rhost`): what a provider is known to mean by
what it says, where its words would mislead the general table.

Each rule: the provider, how to know it (the host that answered, or the recipient's
domain), and a function that returns a reason or None (the general table decides).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .mail import command_in
from .model import Found


@dataclass(frozen=True, slots=True)
class Rhost:
    name: str
    hosts: re.Pattern[str]  # matched against the answering host and the recipient's domain
    refine: Callable[[Found, str], str | None]


def _after_data(found: Found, text: str) -> bool:
    return bool(
        (found.command or "").upper() == "DATA"
        or re.search(r">>> DATA|in reply to end of DATA|after end of data|DATA command", text, re.I)
    )


def _docomo(found: Found, text: str) -> str | None:
    # docomo answers "550 Unknown user" both for a missing address and, with 5.2.0, for
    # the subscriber's 受信拒否設定 (domain/address filter); after DATA the address was
    # accepted at RCPT, so the refusal is of the message, not of the address
    # its MX's own wordings for a full mailbox and too many recipients in one session
    if re.search(r"552 too much mail data", text, re.I):
        return "mailboxfull"
    if re.search(r"552 too many recipients", text, re.I):
        return "toomanyconn"
    if found.status == "5.2.0" or re.search(r"\b5\.2\.0\b", text):
        return "filtered"
    if re.search(r"unknown user", text, re.I) and _after_data(found, text):
        return "rejected"
    return None


def _kddi(found: Found, text: str) -> str | None:
    # au's MX names the address when it has no such mailbox ("550 <x@ezweb.ne.jp>: User
    # unknown", at RCPT), and answers "550 : User unknown" without it, after DATA, when
    # the subscriber's filter (受信拒否設定) refuses the sender
    if re.search(r"\b550:? <[^<>\s]+@[^<>\s]+>: user unknown", text, re.I):
        return "userunknown"
    if re.search(r"recipient address rejected", text, re.I) and command_in(text) == "RCPT":
        return "userunknown"
    if re.search(r"user unknown", text, re.I) and _after_data(found, text):
        return "filtered"
    if found.status == "5.2.0":
        return "filtered"
    return None


def _softbank(found: Found, text: str) -> str | None:
    if found.status == "5.2.0" or (
        re.search(r"unknown user", text, re.I) and _after_data(found, text)
    ):
        return "filtered"
    return None


def _google(found: Found, text: str) -> str | None:
    # Gmail writes the reason as a phrase after its 5.7.x code; some read as userunknown
    if re.search(r"5\.7\.1.*(?:unsolicited mail|likely unsolicited)", text, re.I):
        return "spamdetected"
    if re.search(r"5\.7\.26|unauthenticated email|5\.7\.27|5\.7\.25", text, re.I):
        return {"5.7.25": "requireptr"}.get(found.status or "", "authfailure")
    if re.search(r"5\.2\.1.*(?:disabled|not receiving mail|inactive)", text, re.I):
        return "suspend"
    if re.search(r"5\.7\.28|unusual rate of unsolicited", text, re.I):
        return "badreputation"
    if re.search(r"daily (?:user )?sending (?:quota|limit)|receiving mail at a rate", text, re.I):
        return "ratelimited" if (found.status or "4").startswith("4") else "suspend"
    return None


def _microsoft(found: Found, text: str) -> str | None:
    # Outlook.com's own answer for an address it does not have
    if re.search(r"requested action not taken: mailbox unavailable", text, re.I):
        return "userunknown"
    if re.search(r"\b(?:S3150|SC-00[1-4]|AS\(\d+\)|banned sending ip|block list)", text, re.I):
        return "blocked"
    if re.search(
        r"5\.7\.(?:509|515)|access denied, sending domain .* does not pass dmarc", text, re.I
    ):
        return "authfailure"
    if re.search(r"5\.4\.1 .*recipient address rejected: access denied", text, re.I):
        return "userunknown"
    return None


def _yahoo(found: Found, text: str) -> str | None:
    if re.search(
        r"\[TS0[1-4]\]|\[TSS0[1-9]\]|temporarily deferred due to unexpected volume", text, re.I
    ):
        return "blocked"
    if re.search(r"user doesn't have a (?:yahoo|ymail|aol)", text, re.I):
        return "userunknown"
    return None


RULES: tuple[Rhost, ...] = (
    Rhost("docomo", re.compile(r"(?:^|\.)docomo\.ne\.jp$", re.I), _docomo),
    Rhost("kddi", re.compile(r"(?:^|\.)(?:ezweb\.ne\.jp|au\.com|auone-net\.jp)$", re.I), _kddi),
    Rhost(
        "softbank", re.compile(r"(?:^|\.)(?:softbank\.ne\.jp|i\.softbank\.jp)$", re.I), _softbank
    ),
    Rhost(
        "google", re.compile(r"(?:^|\.)(?:google\.com|googlemail\.com|gmail\.com)$", re.I), _google
    ),
    Rhost(
        "microsoft",
        re.compile(
            r"(?:^|\.)(?:outlook\.com|hotmail\.com|live\.com|protection\.outlook\.com|msn\.com)$",
            re.I,
        ),
        _microsoft,
    ),
    Rhost(
        "yahoo",
        re.compile(r"(?:^|\.)(?:yahoo\.com|yahoodns\.net|aol\.com|ymail\.com)$", re.I),
        _yahoo,
    ),
)

_HOST_SAID_RE = re.compile(
    r"(?:host|while talking to|from)\s+\[?([A-Za-z0-9.-]+\.[A-Za-z]{2,})", re.I
)


def hosts_of(found: Found) -> list[str]:
    hosts = [h.rstrip(".").lower() for h in (found.rhost,) if h]
    if m := _HOST_SAID_RE.search(found.diagnostic):
        hosts.append(m.group(1).rstrip(".").lower())
    hosts.append(found.address.rpartition("@")[2].lower())
    return hosts


def refine(found: Found, text: str) -> tuple[str, str] | None:
    """(provider, reason) when a provider's rule knows better than the general table."""
    if (found.status or "")[1:] == ".1.1":
        return None  # "bad destination mailbox" said in code: every provider means it
    hosts = hosts_of(found)
    for rule in RULES:
        reason = rule.refine(found, text) if any(rule.hosts.search(h) for h in hosts) else None
        if reason:
            return rule.name, reason
    return None
