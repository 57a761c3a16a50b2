"""`haishin site build`: Pelican in-process, into a fresh folder that replaces the old one.

Pelican writes straight into its output folder; building next to it and swapping at the
end means a failed build (bad registry, broken template) never leaves a half-built site.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def build_site(
    settings_file: Path,
    output: Path,
    *,
    config: Path | None = None,
    now: str | None = None,
    archive: Path | None = None,
    stored: Path | None = None,
) -> int:
    """Build the site; returns the number of channels published. Raises
    `SiteRegistryInvalid` (its problems already printed) when the registry is invalid."""
    from pelican import Pelican
    from pelican.settings import read_settings

    from .loaded import IN_PROCESS_KEY, SETTINGS_KEY

    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    override: dict[str, Any] = {
        "OUTPUT_PATH": str(staging),
        "DELETE_OUTPUT_DIRECTORY": False,
        IN_PROCESS_KEY: True,
    }
    if config is not None:
        override["HAISHIN_CONFIG"] = str(config.resolve())
    if now is not None:
        override["HAISHIN_NOW"] = now
    if archive is not None:  # back numbers kept in git (default: content/archive/)
        override["HAISHIN_ARCHIVE"] = str(archive.resolve())
    if stored is not None:  # the store's back numbers, exported for this build
        override["HAISHIN_STORED_ARCHIVE"] = str(stored.resolve())
    try:
        settings = read_settings(str(settings_file), override=override)
        pelican = Pelican(settings)
        pelican.run()
        published = len(pelican.settings[SETTINGS_KEY].site.channels)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a web server must read it
        _swap(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return published


def _swap(new: Path, output: Path) -> None:
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        output.rename(old)
    new.rename(output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
