"""What the registry's rule modules share: the rule type, who holds which power, and
the walk over channels with their documents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from .load import Registry
from .model import Channel, Role
from .problems import Problem
from .yamlsource import Document

Rule = Callable[[Registry], Iterable[Problem]]

APPROVER = Role.GENERAL_MANAGER
"""第6条2: the 統括管理者 approves Form 1 with Form 2."""

PAUSER = Role.GENERAL_MANAGER
"""第3条5: the 統括管理者 may stop a department's distribution."""

DISASTER_IDS = frozenset({"bosai", "disaster", "weather", "kisho", "saigai", "emergency"})
DISASTER_WORDS = ("防災", "気象", "災害", "天気", "警報", "注意報", "地震", "津波", "避難")


def channels_of(reg: Registry) -> Iterator[tuple[str, Channel, Document]]:
    for slug, located in reg.channels.items():
        yield slug, located.value, located.doc


# --- names and addresses --------------------------------------------------------------
