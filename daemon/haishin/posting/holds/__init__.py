"""Holds: what keeps an approved post from going out now, as a table of small rules.

Decisions apart from actions (style.md 3): each rule answers a `Hold` or None; `table`
orders them (an outage first, 第9条; then a pause, 第3条5; then the send time, 第5条4)
and the first that holds is the post's hold. The hold is recorded with the post — its
note, and a finding with the rule's name and verdict `hold` — where approval and release
decide (posting/decisions.py, posting/release.py), and `haishin held` shows it. A held
post simply waits; nothing held is dropped.
"""

from .base import Hold, HoldKind, current, recorded
from .table import HOLDS, hold_of

__all__ = ["HOLDS", "Hold", "HoldKind", "current", "hold_of", "recorded"]
