"""SMTP reply codes by name (RFC 5321 §4.2.2-4.2.3), as aiosmtpd's own
`testing/statuscodes.py` names them for its tests: reply codes are API, so the tests say
which answer they expect in words, and a changed code is a visible change of contract."""

from __future__ import annotations

import enum


class Code(enum.IntEnum):
    OK = 250
    START_INPUT = 354
    SERVICE_UNAVAILABLE = 421  # RFC 5321 §3.8: the greeting of a refused connection
    MAILBOX_BUSY = 450
    LOCAL_ERROR = 451  # temporary: the client keeps the message and retries
    INSUFFICIENT_STORAGE = 452  # RFC 5321 §4.5.3.1.10: too many recipients, try later
    SYNTAX_ERROR = 501
    MAILBOX_UNAVAILABLE = 550  # unknown, unserved or forged recipient
    EXCEEDED_STORAGE = 552  # RFC 1870: over the declared size
    MAILBOX_NAME_NOT_ALLOWED = 553
    TRANSACTION_FAILED = 554  # permanent: never to be stored


OK = f"{Code.OK} OK"
"""What a sink answers to a recipient or a message it accepts."""
