"""The site's browser fixtures (headless Chromium, axe-core), reused for the report."""

from support.browser import axe_js, chromium  # noqa: F401
