"""Issue 14 item 4: on a 390 px phone the channel page's addresses wrap where a reader
expects (after "-" and ".", before "@"), never inside a word, in real Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from support.browser import viewport

PHONE = 390

# Each line's first character index, per .address element: a character whose box starts
# lower than the one before it begins a new line.
LINES = """
return [...document.querySelectorAll(arguments[0])].map(el => {
  const text = el.textContent, starts = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  let index = 0, lastTop = null, node;
  while ((node = walker.nextNode())) {
    for (let i = 0; i < node.length; i++, index++) {
      const r = document.createRange();
      r.setStart(node, i); r.setEnd(node, i + 1);
      const top = r.getBoundingClientRect().top;
      if (lastTop !== null && top > lastTop + 2) starts.push(index);
      lastTop = top;
    }
  }
  return [text, starts];
});
"""


def _breaks(driver: Any, selector: str) -> list[tuple[str, list[int]]]:
    return [(text, starts) for text, starts in driver.execute_script(LINES, selector)]


def _sensible(text: str, start: int) -> bool:
    return text[start - 1] in "-." or text[start] == "@"


@pytest.mark.parametrize("slug", ["kosodate-news", "sports-event"])
def test_the_addresses_wrap_only_between_words(chromium: Any, served: str, slug: str) -> None:
    driver = chromium
    viewport(driver, PHONE)
    driver.get(f"{served}/channels/{slug}.html")
    found = _breaks(driver, "p.address")
    assert len(found) == 4  # subscribe, the domain to allow, unsubscribe, mypage
    wrapped = 0
    for text, starts in found:
        assert "@" in text or "." in text
        for start in starts:
            assert _sensible(text, start), f"{text!r} cut at {text[:start]!r} | {text[start:]!r}"
        wrapped += len(starts)
    assert wrapped, "at 390 px the long addresses must wrap (else this test shows nothing)"

    # the same text without its <wbr> and with the old CSS is cut mid-word: the check bites
    driver.execute_script(
        "document.querySelectorAll('p.address').forEach(el => {"
        " el.textContent = el.textContent; el.style.overflowWrap = 'anywhere'; });"
    )
    cut = [
        (text, s) for text, starts in _breaks(driver, "p.address") for s in starts
        if not _sensible(text, s)
    ]  # fmt: skip
    assert cut
