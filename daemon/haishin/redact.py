"""Redaction, in one place (第4条(3): the クラウドサービス管理者 keeps registration data
secure; design.md: logs never hold an address in clear).

Logs: one scheme, a keyed hash. An address becomes `addr:` and 12 hex digits of HMAC-SHA256
under the service's token key (tokens.py) over the lower-cased address. Chosen over the
other two the daemon used (`<address>`, and `***@domain`) because:

- the same address gives the same mark in every line, every process and every day, so an
  operator can follow one citizen's mail through the log (the request, the confirmation,
  a bounce) without the log naming anyone;
- an administrator asked about one address can compute its mark with the daemon's key and
  find its lines (the audit records a removal the same way: cli/subscribers.py);
- keyed, not a plain hash: whoever reads a leaked log cannot test guessed addresses
  against it without the key; and no domain is kept, since a small organisation's domain
  alone can name a person.

Known addresses are marked where they are logged (`Keyring.redact`); `LogFilter`, on every
handler of the daemon, marks each address left in the text of any record (a remote server's
reply quoting one, an exception, a library's own line), so none reaches a log in clear.

Bounce reports for staff (`mask`, `mask_addresses`): `***@domain`, kept in the database
and printed by `haishin bounces`. Not a log: the 情報管理者 reads it, needs the carrier
(the domain is the evidence of a carrier's trouble) and has no key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from .addresses import IN_TEXT

MARK_PREFIX = "addr:"
_EDGES = "'.`{}"
"""Taken by the text pattern but not part of the address: quotes and braces around it (a
Python repr in an exception), the full stop after it. Kept beside the mark, so that one
address gives one mark however it is quoted."""


def mark(key: bytes, address: str) -> str:
    """The mark of one address."""
    # surrogateescape: a hostile path that is not UTF-8 still gets a mark, not an error
    data = address.lower().encode("utf-8", "surrogateescape")
    return MARK_PREFIX + hmac.new(key, b"log\0" + data, hashlib.sha256).hexdigest()[:12]


def scrub(key: bytes, text: str) -> str:
    """`text` with every address in it replaced by its mark."""

    def one(m: re.Match[str]) -> str:
        head, inner, tail = _edges(m.group())
        return head + mark(key, inner) + tail

    return IN_TEXT.sub(one, text)


class LogFilter(logging.Filter):
    """Marks the addresses in each record's message and traceback before the handler
    formats it. Installed on the daemon's handler (service.configure_logging)."""

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self._key = key

    def filter(self, record: logging.LogRecord) -> bool:
        # a mark holds no "@": a record that passes a second such filter stays the same
        record.msg = scrub(self._key, record.getMessage())
        record.args = None
        if record.exc_info:
            # formatted here, as Formatter.format would, then scrubbed and cached: the
            # handler's formatter uses `exc_text` when it is set
            record.exc_text = scrub(self._key, logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(self._key, record.stack_info)
        return True


def _edges(found: str) -> tuple[str, str, str]:
    inner = found.strip(_EDGES)
    head = found[: len(found) - len(found.lstrip(_EDGES))]
    return head, inner, found[len(found.rstrip(_EDGES)) :]


def mask(address: str) -> str:
    """`***@domain`: enough to see a carrier's trouble, not enough to name a person."""
    _, at, domain = address.rpartition("@")
    return f"***@{domain}" if at else "***"


def mask_addresses(text: str) -> str:
    """Every address in `text` reduced to `***@domain`."""

    def one(m: re.Match[str]) -> str:
        head, inner, tail = _edges(m.group())
        return head + mask(inner) + tail

    return IN_TEXT.sub(one, text)
