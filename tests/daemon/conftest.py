"""Fixtures for the daemon tests: databases (SQLite file and PostgreSQL) and a sink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import helpers


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'haishin.db'}"
        return
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with helpers.pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'haishin.db'}"


@pytest.fixture
def sink() -> Iterator[helpers.Sink]:
    with helpers.sink() as s:
        yield s
