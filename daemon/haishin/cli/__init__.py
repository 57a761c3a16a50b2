"""`haishin`: the command line, one module per concern.

`base.COMMANDS` names each command's module; it is imported when the command runs.
"""

from .base import cli, main

__all__ = ["cli", "main"]
