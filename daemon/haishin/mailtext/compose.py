"""Build the daemon's own messages: RFC 5322 with MIME (RFC 2045-2047), CRLF line ends.

The header block is written here rather than through `EmailMessage` with `policy.SMTP`:
the stdlib's header folding costs about 7 ms a message, which capped confirmations at
~130 a second on the target machine. What is written is deliberately simple (every
non-ASCII header value as RFC 2047 base64 encoded-words of UTF-8, the body as base64 of
UTF-8), and the tests read every text back with `policy.default` to prove it round-trips.

Every message carries `Auto-Submitted` (RFC 3834 §5) and our loop header, so that our own
mail never triggers our own answers.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage

from ..clock import jstnow

LOOP_HEADER = "X-Haishin-Loop"
"""Set on every message the daemon sends; its return means the mail is our own."""

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_WORD_BYTES = 45  # 45 bytes → 60 base64 chars: each encoded-word fits a 78-char line (§2)


def _check(value: str) -> str:
    # header injection: no value may carry a line break or a control character
    if _UNSAFE.search(value):
        raise ValueError(f"control character in a header value: {value!r}")
    return value


def encode_words(text: str) -> str:
    """RFC 2047 §4.1 B-encoded words, split on character boundaries, folded with CRLF SP."""
    _check(text)
    if text.isascii():
        return text
    words: list[str] = []
    chunk = b""
    for ch in text:
        b = ch.encode("utf-8")
        if len(chunk) + len(b) > _WORD_BYTES:
            words.append(chunk.decode())
            chunk = b""
        chunk += b
    words.append(chunk.decode())
    return "\r\n ".join("=?utf-8?b?" + base64.b64encode(w.encode()).decode() + "?=" for w in words)


@functools.lru_cache(maxsize=4096)
def mailbox_header(name: str, address: str) -> str:
    """`display <address>`, folded by the stdlib (a phrase of several encoded-words is
    easy to get subtly wrong); cached, since a channel's From is always the same."""
    _check(name)
    _check(address)
    if not name:
        return address
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=name, addr_spec=address)
    folded = str(policy.SMTP.fold("From", msg["From"]))
    return folded.removeprefix("From: ").removesuffix("\r\n")


def message_id(domain: str) -> str:
    return email.utils.make_msgid(domain=domain)


def compose(
    *,
    from_name: str,
    from_addr: str,
    to: str,
    subject: str,
    body: str,
    domain: str,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    auto: str = "auto-replied",
    extra: dict[str, str] | None = None,
    attachment: bytes | None = None,
) -> bytes:
    headers = [
        ("From", mailbox_header(from_name, from_addr)),
        # the recipient as written: carrier addresses such as abc..def@docomo.ne.jp must
        # not be rewritten into a quoted form that some phones do not recognise as theirs
        ("To", _check(to)),
        ("Subject", encode_words(subject)),
        ("Date", email.utils.format_datetime(jstnow())),
        ("Message-ID", message_id(domain)),
    ]
    if reply_to:
        headers.append(("Reply-To", _check(reply_to)))
    if in_reply_to:
        headers += [("In-Reply-To", _check(in_reply_to)), ("References", in_reply_to)]
    headers += [("Auto-Submitted", auto), (LOOP_HEADER, domain)]
    headers += [(k, encode_words(v)) for k, v in (extra or {}).items()]
    headers.append(("MIME-Version", "1.0"))
    text_part = (
        b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + _b64_lines(body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))
    )
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii")
    if attachment is None:
        return head + text_part
    boundary = "=_haishin_" + base64.b32encode(email.utils.make_msgid().encode()[:15]).decode()
    return (
        head
        + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode()
        + f"--{boundary}\r\n".encode()
        + text_part
        + f"\r\n--{boundary}\r\n".encode()
        + b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n"
        + b"Content-Transfer-Encoding: 8bit\r\n\r\n"  # RFC 2046 §5.2.1: 7bit/8bit/binary only
        + attachment
        + (b"" if attachment.endswith(b"\r\n") else b"\r\n")
        + f"--{boundary}--\r\n".encode()
    )


def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))
