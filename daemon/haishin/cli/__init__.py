"""`haishin`: the command line, one module per concern.

Importing a module registers its commands on the `cli` group.
"""

from . import bounces, daemon, held, operations, registry, site, subscribers  # noqa: F401
from .base import cli, main

__all__ = ["cli", "main"]
