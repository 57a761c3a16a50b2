"""The signal handlers: load and validate the registry, add our generator and filters."""

from __future__ import annotations

import sys
from typing import Any

from .errors import SiteRegistryInvalid
from .generator import RegistryGenerator
from .jpformat import FILTERS
from .loaded import IN_PROCESS_KEY, SETTINGS_KEY, Loaded, load
from .options import from_settings


def load_registry(pelican: Any) -> None:
    """`initialized`: runs before any output is written, so a bad registry builds nothing.

    The problems go to stderr as plain lines, exactly as `haishin check` prints them (Pelican's
    log handler would wrap them at 80 columns), before the exception stops Pelican.
    """
    try:
        pelican.settings[SETTINGS_KEY] = load(from_settings(pelican.settings))
    except SiteRegistryInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        if pelican.settings.get(IN_PROCESS_KEY):
            sys.stderr.flush()
            raise
        # Under the plain `pelican` command an exception would be logged with a
        # traceback; a clerk needs only the lines above and a failing exit status.
        print(f"pelican: {exc.args[0]}", file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(exc.exitcode) from None


def add_generator(pelican: Any) -> type:
    """`get_generators`: our pages are made by a generator of our own."""
    return RegistryGenerator


def add_filters(generator: Any) -> None:
    """`generator_init`: every generator renders our base template, so each gets the filters."""
    generator.env.filters.update(FILTERS)


def date_empty_feeds(context: dict[str, Any], feed: Any) -> None:
    """`feed_generated`: a feed with no entries yet would be dated "now" by feedgenerator,
    so two builds of the same registry would differ; date it at the site's moment instead."""
    loaded = context.get(SETTINGS_KEY)
    if isinstance(loaded, Loaded) and not feed.items:
        now = loaded.options.now
        feed.latest_post_date = lambda: now
