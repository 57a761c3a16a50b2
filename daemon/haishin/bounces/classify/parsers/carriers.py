"""The Japanese carriers' own notices (au/EZweb and au one net, docomo, SoftBank).

They are not DSNs: a Japanese paragraph, then a fixed English sentence naming what
happened, then the addresses. The sentence settles the reason, unless a reply from a
remote server is quoted beside the address (then the reason table reads that reply).
"""

from __future__ import annotations

import re

from ..mail import Mail
from ..model import Found
from . import text

_CARRIER_FROM_RE = re.compile(
    r"@(?:[\w-]+\.)*(?:ezweb\.ne\.jp|au\.com|dion\.ne\.jp|auone-net\.jp|docomo\.ne\.jp|"
    r"softbank\.ne\.jp|softbank\.jp|vodafone\.ne\.jp|disney\.ne\.jp|biglobe\.ne\.jp)\b",
    re.IGNORECASE,
)

# (the carrier's fixed sentence, the reason it settles), first match wins
SENTENCES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"account is disabled|was suspended|has been suspended", re.I), "suspend"),
    (re.compile(r"not delivered within \d+ days|remote host is not responding", re.I), "expired"),
    (re.compile(r"mailbox is full|exceeded the local limit|一杯|容量", re.I), "mailboxfull"),
    (re.compile(r"recipients? was rejected by a remote mail server|受信拒否", re.I), "filtered"),
    (re.compile(r"user unknown|no such user|存在しません|宛先不明", re.I), "userunknown"),
)
_QUOTED_REPLY_RE = re.compile(r"(?<![\w.#/-])[45]\d\d(?=[ ,;:-]|$)")
"""A remote server's reply quoted beside the address (RFC 5321 §4.2 code)."""


def parse(mail: Mail) -> list[Found] | None:
    if not _CARRIER_FROM_RE.search(mail.get("From")):
        return None
    found = text.extract(mail) or text.fallback(mail)
    whole = " ".join(mail.text.split())
    hint = next((reason for pattern, reason in SENTENCES if pattern.search(whole)), None)
    out = []
    for f in found:
        quoted = bool(_QUOTED_REPLY_RE.search(f.diagnostic))
        diagnostic = f.diagnostic if quoted else f"{f.diagnostic} {whole}"[:800]
        out.append(
            Found(
                f.address,
                status=f.status,
                reply_code=f.reply_code,
                diagnostic=diagnostic,
                hint=None if quoted else hint,
            )
        )
    return out or None
