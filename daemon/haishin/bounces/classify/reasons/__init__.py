"""The reasons: each row holds the status codes and the reply-text patterns of one reason
(Sisimai's vocabulary), and the class the reason means (issue 12, item 1).

`row.py` is the shape of a row; `about_us.py`, `recipient.py`, `transport.py` and
`session.py` hold the rows of one group each; `table.py` orders them and answers the
lookups the classifier makes (`decide.py`).
"""

from __future__ import annotations

from .row import Reason
from .table import BY_NAME, BY_STATUS, EXTRA, REASONS, VAGUE_STATUSES, by_text, klass, status_key

__all__ = [
    "BY_NAME",
    "BY_STATUS",
    "EXTRA",
    "REASONS",
    "VAGUE_STATUSES",
    "Reason",
    "by_text",
    "klass",
    "status_key",
]
