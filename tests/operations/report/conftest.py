"""The site's browser fixtures (headless Chromium, axe-core), reused for the report."""

from website.conftest import axe_js, chromium  # noqa: F401
