"""The rule for "no English reaches staff": what counts as an English message.

A finding may quote what the clerk wrote (keys, values, addresses) and name formats
(YAML, UTF-8, Shift_JIS, true/false), all single words or quoted. An English sentence
is two or more ASCII words in a row once quoted spans ('…', "…", 「…」) are set aside:
"could not find expected", "Value error", "unsafe characters: IDEOGRAPHIC SPACE".
"""

from __future__ import annotations

import re

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|「[^」]*」")
_SENTENCE = re.compile(r"[A-Za-z]{2,}(?:[,:]? +[A-Za-z]{2,})+")


def english_in(message: str) -> list[str]:
    """The English phrases of `message` outside what it quotes."""
    return _SENTENCE.findall(_QUOTED.sub("", message))
