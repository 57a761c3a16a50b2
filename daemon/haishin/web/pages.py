"""The daemon's HTML pages, rendered from Jinja2 templates in `templates/` (each extends
`base.html`, filling the blocks `title` and `content`).

Minimal on this branch (issue 14, mypage): the themed version (the site's CSS, header and
footer) comes from the pages branch with the same `render` signature.
"""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("haishin.web", "templates"),
    autoescape=True,  # every value is text: an address or a title never becomes markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, *, status: int = 200, **values: Any) -> web.Response:
    text = _ENV.get_template(template).render(**values)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
