"""Remote replies often quote the address ("550 <a@b>: no such user"); logs never hold
one in clear (第4条(3))."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")


def redact(text: str) -> str:
    return _ADDRESS.sub("<address>", text)
