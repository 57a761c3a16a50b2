"""Pelican settings for the public site (第7条): `pelican content -s pelicanconf.py`.

The plugin `haishin.site` reads the registry in config/ and writes the channel directory;
content/pages/ holds the hand-written pages and content/archive/<slug>/ the back numbers.
A registry that fails `haishin check` stops the build before anything is written.
"""

from pathlib import Path

from haishin.site.markup import EscapeHtml

HERE = Path(__file__).resolve().parent

SITENAME = "川崎市電子メール配信サービス"
DEFAULT_LANG = "ja"
TIMEZONE = "Asia/Tokyo"
PATH = "content"
OUTPUT_PATH = "output"
THEME = str(HERE / "site_theme")
THEME_STATIC_DIR = "theme"

PLUGINS = ["haishin.site"]
HAISHIN_CONFIG = str(HERE / "config")
HAISHIN_ARCHIVE = str(HERE / "content" / "archive")
# HAISHIN_NOW = "2026-11-25"  # fix the date the site describes (tests, reproducible builds)

# The site's absolute URL lives in config/service.yaml (site_url); feeds and the sitemap
# take it from there. Pages link relatively, so a copy of output/ works anywhere.
SITEURL = ""
RELATIVE_URLS = True

# Only hand-written pages come from content/; the registry makes everything else, and the
# back numbers are read by the plugin (content/archive/), not as blog articles.
ARTICLE_PATHS: list[str] = []
PAGE_PATHS = ["pages"]
PAGE_URL = PAGE_SAVE_AS = "pages/{slug}.html"
PAGE_ORDER_BY = "order"
SLUGIFY_SOURCE = "basename"  # Japanese titles make poor URLs; file names make good ones
STATIC_PATHS = ["extra"]
EXTRA_PATH_METADATA = {
    "extra/favicon.ico": {"path": "favicon.ico"},
}
DIRECT_TEMPLATES: list[str] = []
ARCHIVES_SAVE_AS = AUTHORS_SAVE_AS = CATEGORIES_SAVE_AS = TAGS_SAVE_AS = ""
AUTHOR_SAVE_AS = CATEGORY_SAVE_AS = TAG_SAVE_AS = ""
FEED_ALL_ATOM = FEED_ALL_RSS = CATEGORY_FEED_ATOM = AUTHOR_FEED_ATOM = AUTHOR_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
DEFAULT_DATE_FORMAT = "%Y年%m月%d日"

# Keep mail bodies as they were written: no smart quotes or typographic rewriting.
TYPOGRIFY = False
MARKDOWN = {
    # raw HTML in a post or page is shown as text: back numbers come from e-mail. Listed
    # last, so that it also removes the HTML handling `extra` (md_in_html) brings.
    "extensions": [
        "markdown.extensions.extra",
        "markdown.extensions.nl2br",
        "markdown.extensions.meta",
        EscapeHtml(),
    ],
    "extension_configs": {
        "markdown.extensions.extra": {},
        "markdown.extensions.nl2br": {},  # a mail's line breaks are meant
        "markdown.extensions.meta": {},
    },
    "output_format": "html5",
}

# Registry texts (titles, reasons, notices) are escaped wherever a template shows them;
# only content Pelican rendered from Markdown is marked safe in the templates.
JINJA_ENVIRONMENT = {"trim_blocks": True, "lstrip_blocks": True, "autoescape": True}
