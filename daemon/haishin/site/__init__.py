"""The Pelican plugin that publishes the channel directory (第7条) from the registry.

Pelican loads it as `PLUGINS = ["haishin.site"]` and calls `register()`; everything it
does goes through Pelican's signals and a generator of its own, never by patching Pelican.
"""

from __future__ import annotations

import logging

from pelican import signals

from .plugin import add_filters, add_generator, date_empty_feeds, load_registry

# Importing Pelican makes every logger created afterwards a LimitLogger, which drops a
# record identical to one logged before: a daemon (`haishin demo`) or a test that imports
# the site first would log a repeated failure only once. Pelican's own loggers keep it.
logging.setLoggerClass(logging.Logger)


def register() -> None:
    # `initialized` runs before any generator touches the output folder, so an invalid
    # registry stops the build with nothing written.
    signals.initialized.connect(load_registry)
    signals.get_generators.connect(add_generator)
    signals.generator_init.connect(add_filters)
    signals.feed_generated.connect(date_empty_feeds)
