"""The URL scheme, in one place: the public site's pages (site/, built by Pelican from the
registry, 第7条) and the daemon's own pages (web/), so that a link in a mail and the page it
names cannot drift apart. The site imports this, the daemon imports this; neither imports
the other (the daemon must not need Pelican).

Each pattern is a path relative to its base: `service.yaml` `site_url` for the site, the
daemon's public URL (`haishin serve --public-url`) for its pages. Both bases end in "/".
"""

from __future__ import annotations

# the public site (relative to site_url)
INDEX = "index.html"
DEPARTMENTS = "departments.html"
CHANNEL = "channels/{slug}.html"
CHANNEL_QR = "channels/{slug}/qr.png"
BACKNUMBERS = "channels/{slug}/backnumbers.html"
ARCHIVED_POST = "channels/{channel}/{slug}.html"
"""A post that went out, in its channel's back numbers; `slug` names the post (its file)."""
LAST_SENT = "{channel}/.last-sent"
"""Not a URL: in the back-number folder (the site's archive), when the channel's latest post
went out (ISO 8601, JST), written by the daemon for every channel, a private archive's
too, so that any host building the site shows 最終配信日 (第5条4) without the database."""
CHANNEL_FEED = "feeds/{slug}.atom.xml"
MYPAGE_QR = "mypage-qr.png"
"""The QR code of the `mailto:mypage@` that asks for a link to the citizen's own page."""
NOTICES = "notices.html"
NOTICES_FEED = "feeds/notices.atom.xml"
THEME_CSS = "theme/css/site.css"
"""The site theme's style sheet (pelicanconf.py THEME_STATIC_DIR); the daemon's pages use it too."""
FAVICON = "theme/favicon.svg"
# hand-written pages (content/pages/, pelicanconf.py PAGE_URL)
ABOUT = "pages/about.html"
HELP = "pages/help.html"
PRIVACY = "pages/privacy.html"
CONTACT = "pages/contact.html"
CARRIERS = "pages/carriers.html"
"""How to let the service's mail through a carrier's filter: one page per carrier below."""
CARRIER = "pages/carrier-{carrier}.html"
CARRIER_PAGES = ("docomo", "au", "softbank", "ymobile-rakuten", "gmail", "icloud")

# the daemon's pages (relative to its public URL): a GET shows a page, its button POSTs
CONFIRM = "confirm/{token}"
"""Confirm a pending subscription or unsubscription (double opt-in)."""
UNSUBSCRIBE = "unsubscribe/{token}"
"""The unsubscribe link of the welcome mail; RFC 8058 one-click POST too."""
ONE_CLICK = "u/{token}"
"""The same page, in every post's List-Unsubscribe (RFC 8058): short, since some phones
wrap long lines."""
POST = "post/{token}"
"""A held post: approve or withdraw it (第5条(1))."""


def base(url: str) -> str:
    """`url` ending in "/", so that a pattern joins it as a relative path."""
    return url if url.endswith("/") else url + "/"


def at(base_url: str, pattern: str, **values: str) -> str:
    """The absolute URL of `pattern` under `base_url` (the site's or the daemon's)."""
    return base(base_url) + pattern.format(**values)


def route(pattern: str) -> str:
    """The aiohttp route of a daemon page: `/confirm/{token}`."""
    return "/" + pattern


ME = "me/{token}"
"""The citizen's own page: every channel of one address (mypage@, issue 14). A GET shows;
its forms POST to the same URL, the token in it being the proof of the mailbox."""
ME_MOVE = "me/move/{token}"
"""Confirm a change of address, from the link mailed to the new address."""

DAEMON_PAGES = (CONFIRM, UNSUBSCRIBE, ONE_CLICK, POST, ME, ME_MOVE)
