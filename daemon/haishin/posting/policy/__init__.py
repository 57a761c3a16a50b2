"""第3条(2): the basic requirements every post must meet, as a table of small rules.

Each rule is a module with one `check(post, policy) -> Finding`; `table.RULES` orders
them; `evaluate` runs them all and keeps every outcome (pass, warn, refuse) so that the
decision can be audited and the sender told exactly what to fix.
"""

from .base import Finding, PartInfo, PolicyResult, PostVerdict, PostView
from .table import RULES, evaluate

__all__ = ["RULES", "Finding", "PartInfo", "PolicyResult", "PostVerdict", "PostView", "evaluate"]
