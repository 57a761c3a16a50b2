"""What the commands that act on a channel load: the registry with that channel in it, and
the daemon's `Context` for commands that mail as the daemon does (confirmation requests)."""

from __future__ import annotations

from pathlib import Path

import click

from ..context import Context
from ..directory import Directory
from ..registry import Registry, load_valid
from ..tokens import load_keyring


def registry_with(config_dir: Path, channel: str) -> Registry:
    """The registry, which must have CHANNEL: an unknown one is a usage error."""
    registry = load_valid(config_dir)
    if channel not in registry.channels:
        raise click.ClickException(f"unknown channel {channel}")
    return registry


def context_of(registry: Registry, secret_file: Path, public_url: str | None) -> Context:
    """The daemon's context: the address directory and the links its mail carries, under
    `public_url` or the service's own site (service.yaml, 第10条)."""
    assert registry.service is not None
    url = public_url or registry.service.value.site_url
    keyring = load_keyring(secret_file)
    return Context(Directory(registry, keyring), keyring, url if url.endswith("/") else url + "/")
