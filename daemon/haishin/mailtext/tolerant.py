"""`policy.default` that never raises while it reads a header, and reads each one once.

The stdlib's header parser raises on some hostile values instead of noting a defect: an
encoded word or RFC 2231 parameter in a charset whose codec refuses the "replace" and
"surrogateescape" handlers (`idna`: UnicodeError), a charset name with a NUL
(ValueError), comments nested deeper than the recursion limit (RecursionError). Each
`msg[...]`, `get_content_type()` or `get_param()` parses the field again, and the parser
is quadratic, so a field over the `limits` is not parsed at all and a parsed one is kept.

What a field that cannot be read becomes follows the RFCs' own defaults: Content-Type
`text/plain` (RFC 2045 §5.2), Content-Disposition `attachment` (RFC 2183 §2.8); any other
structured field is empty (no address: nothing a sender wrote is taken as one), an
unstructured one keeps its text with the encoded words left as written.
"""

from __future__ import annotations

import re
from email.headerregistry import BaseHeader
from email.policy import EmailPolicy
from functools import lru_cache
from typing import Any

from .limits import LIMITS, STRUCTURED

_FALLBACK = {
    "content-type": "text/plain",  # RFC 2045 §5.2: the default for an invalid one
    "content-disposition": "attachment",  # RFC 2183 §2.8: unrecognised → attachment
    "content-transfer-encoding": "8bit",  # read as it is; RFC 2045 §6.4 leaves it to us
}
_EW_START_RE = re.compile(r"=\?")
_LINESEP_RE = re.compile(r"[\r\n]")  # as EmailPolicy.header_fetch_parse unfolds
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _too_complex(name: str, value: str) -> bool:
    if name not in STRUCTURED:
        return len(value) > LIMITS.max_field
    if len(value) > LIMITS.max_structured_field or value.count("(") > LIMITS.max_comments:
        return True
    return name.startswith("content-") and value.count(";") > LIMITS.max_params


def _fallback(name: str, value: str) -> str:
    if name in STRUCTURED:
        return _FALLBACK.get(name, "")
    # "=?" starts no encoded word once a space is between; controls go (RFC 5322 §3.2.5)
    return _EW_START_RE.sub("= ?", _CONTROL_RE.sub(" ", value[: LIMITS.max_field]))


class TolerantPolicy(EmailPolicy):
    """EmailPolicy whose `header_fetch_parse` (the documented hook, email.policy) turns
    a failure of the header parser into the field's fallback value."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):  # already a header object (set by our own code)
            return value
        # NUL is no header text (RFC 5322 §2.2) and PostgreSQL text cannot hold it: a
        # Message-ID or file name with one would fail the query that looks it up
        value = _LINESEP_RE.sub("", value).replace("\x00", "\ufffd")
        return _parse(self.header_factory, name, value)


@lru_cache(maxsize=512)  # values are at most 16 KB: a few MB at worst
def _parse(factory: Any, name: str, value: str) -> BaseHeader:
    key = name.lower()
    if not _too_complex(key, value):
        try:
            header: BaseHeader = factory(name, value)
            return header
        except Exception:  # the parser's known crashes, see the docstring
            pass
    try:
        header = factory(name, _fallback(key, value))
    except Exception:  # an unstructured value that still fails
        header = factory(name, "")
    return header


TOLERANT = TolerantPolicy()
"""What `mailtext.incoming` parses with; otherwise equal to `policy.default`."""
