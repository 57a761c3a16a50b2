"""The daemon's pages in a real browser: Debian's headless Chromium driven by Selenium, with
axe-core from npm (support/browser.py)."""

from support.browser import axe_js, chromium  # noqa: F401 (fixtures, re-exported)
from website.conftest import sample_site  # noqa: F401 (the built site the daemon serves)
