"""What keeps the daemon's tasks running and its log readable: a task restarted after an
unexpected error (a bug must not stop mail intake, 第8条), and the log handler every record
passes, redacted (第4条(3)).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from .redact import LogFilter
from .tokens import Keyring

log = logging.getLogger("haishin")

MAX_RESTARTS = 5
RESTART_WINDOW = 300.0


async def supervised(name: str, start: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a task forever, restarting it after an unexpected error (a bug must not stop
    mail intake, 第8条); more than MAX_RESTARTS in RESTART_WINDOW seconds ends the daemon,
    so that its supervisor (systemd) notices and restarts it whole."""
    restarts: list[float] = []
    while True:
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            now = asyncio.get_running_loop().time()
            restarts = [t for t in restarts if now - t < RESTART_WINDOW] + [now]
            if len(restarts) > MAX_RESTARTS:
                log.critical(
                    "%s failed %d times in %.0f s; stopping", name, len(restarts), RESTART_WINDOW
                )
                raise
            log.exception("%s failed; restarting (%d)", name, len(restarts))
            await asyncio.sleep(min(2 ** len(restarts), 30))


def configure_logging(keyring: Keyring, verbose: bool = False, json: bool = False) -> None:
    """Plain lines for a person, or one JSON object per line (`--log-format json`) for the
    journal and log collectors (第4条(1): failures must be findable). Every record passes
    the redaction filter first: no address reaches the log in clear (第4条(3))."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(LogFilter(keyring.key))
    if json:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs addresses
    logging.getLogger("flufl.bounce").setLevel(logging.WARNING)  # a line per detector run
