"""The post path (第3条, 第5条) as a table of small rules, like the 第3条(2) requirements
(posting/policy/) and Mailman's chains: each rule reads the `Arrival` and returns its
findings; `table.PATH` orders them; `walk` runs them and keeps every finding, which
commands/post.py stores with the post (its `findings`) and `haishin held show` prints.
"""

from .base import Arrival, Walked
from .table import PATH, walk

__all__ = ["PATH", "Arrival", "Walked", "walk"]
