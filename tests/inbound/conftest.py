"""Fixtures for the IMAP tests under tests/inbound: a store on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import helpers


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'haishin.db'}"
        return
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with helpers.pg_database() as url:
        yield url
