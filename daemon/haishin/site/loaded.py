"""What the plugin loads once per build and hands every generator: the valid registry
and the site's view of it, under one settings key."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RegistryInvalid
from ..registry import Registry, load_valid
from . import view
from .errors import SiteRegistryInvalid
from .options import SiteOptions

SETTINGS_KEY = "HAISHIN_SITE"
"""Where `load_registry` leaves the loaded data for the generator (Pelican's settings are
the one object every generator receives; no module globals)."""


IN_PROCESS_KEY = "HAISHIN_IN_PROCESS"
"""Set by `haishin site build`, which maps the exception itself."""


@dataclass(frozen=True)
class Loaded:
    options: SiteOptions
    registry: Registry
    site: view.SiteView


def load(options: SiteOptions) -> Loaded:
    """The registry, validated as `haishin check` does, and the site's view of it."""
    try:
        reg = load_valid(options.config)
    except RegistryInvalid as exc:
        raise SiteRegistryInvalid(exc.problems) from None
    return Loaded(options, reg, view.build(reg, options.now))
