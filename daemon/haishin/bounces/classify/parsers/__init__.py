"""The parsers, in the order they are asked (issue 12, item 1: one module per family of
evidence). Each only extracts recipients (`Found`); none decides a reason unless its
format settles it (a feedback report is a complaint, an auto-reply is none).

A parser answers None for "not my format" and a list (perhaps empty) for "mine": the
first that claims a message reads it. New reporters are new small modules in this table.
"""

from __future__ import annotations

from collections.abc import Callable

from ..mail import Mail
from ..model import Found
from . import arf, autoreply, carriers, dsn, flufl, googlegroups, ses, text

Parser = Callable[[Mail], list[Found] | None]

PARSERS: tuple[tuple[str, Parser], ...] = (
    ("arf", arf.parse),  # RFC 5965 feedback reports: complaint
    ("ses", ses.parse),  # Amazon SES notifications (JSON)
    ("googlegroups", googlegroups.parse),  # a Google group refusing a post
    ("dsn", dsn.parse),  # RFC 3464 delivery status notifications
    ("carriers", carriers.parse),  # the Japanese carriers' own notices (au, docomo, SoftBank)
    ("autoreply", autoreply.parse),  # RFC 3834 automatic answers: none
    ("text", text.parse),  # the plain-text formats of Exim, qmail, Sendmail, Exchange, ...
    ("flufl", flufl.parse),  # flufl.bounce's detectors, for addresses only
)
