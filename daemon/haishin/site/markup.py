"""Markdown without raw HTML: back numbers come from e-mail, so a sender's `<script>` must
arrive on the site as text, never as markup (the site is a city's homepage)."""

from __future__ import annotations

from markdown import Markdown
from markdown.extensions import Extension


class EscapeHtml(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
