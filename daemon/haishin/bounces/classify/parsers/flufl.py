"""flufl.bounce's detectors (GNU Mailman's), for the older formats no other parser reads.

Used for addresses only: its temporary/permanent split is not a reason, so the reason
table reads the paragraph of the report that names each address.
"""

from __future__ import annotations

import logging

from flufl.bounce import all_failures

from ..mail import ADDRESS_RE, MAX_RECIPIENTS, Mail, is_robot
from ..model import Found
from .dsn import context


class _HandledHere(logging.Filter):
    """flufl.bounce logs a detector's exception with its traceback, then re-raises it
    (its _scan.py); we catch the re-raise below, so its log record is noise, and a
    traceback in the daemon's log would read as a fault of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Exception in detector")


logging.getLogger("flufl.bounce").addFilter(_HandledHere())


def parse(mail: Mail) -> list[Found] | None:
    try:
        temporary, permanent = all_failures(mail.msg)
    except Exception:
        return None
    found: list[Found] = []
    for raw in sorted(temporary | permanent):
        if len(found) >= MAX_RECIPIENTS:
            break  # the rest are not judged (bounce.MAX_RECIPIENTS): no context either
        address = raw.decode("utf-8", "replace").strip("<>")
        # success DSNs and Amazon SES notices make some detectors yield fragments of JSON
        if not ADDRESS_RE.fullmatch(address) or is_robot(address):
            continue
        found.append(Found(address, diagnostic=context(mail.text, address)))
    return found or None
