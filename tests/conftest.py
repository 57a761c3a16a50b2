"""Shared fixtures. In CI (CI=true) a skipped test is a failure: CI installs everything."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from support import helpers, smarthost
from support.dovecot import DOVECOT, Dovecot
from support.imapkit import Spool, folders

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {report.longrepr}"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot for the IMAP tests, started once (tests/support/dovecot.py)."""
    if not os.access(DOVECOT, os.X_OK):
        pytest.skip(f"Dovecot is not installed ({DOVECOT}); .ci/run installs dovecot-imapd")
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.close()


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
def sink() -> Iterator[smarthost.Sink]:
    with smarthost.sink() as s:
        yield s


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    """A fresh, empty folder of the shared Dovecot, for this test."""
    name = f"t{next(folders)}"
    if not dovecot.running:  # a failed restart test must not take the rest down with it
        dovecot.start()
    with dovecot.admin() as c:
        c.create_folder(name)
    return name


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    """The IMAP tests' spool, which counts every offer (tests/support/imapkit.py)."""
    return Spool(tmp_path / "spool.sqlite")


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    """A store (SQLite) for the IMAP ingester's state."""
    return f"sqlite:///{tmp_path / 'imap-state.db'}"


@pytest.fixture
def state_db(state_url: str) -> Iterator[sa.Engine]:
    from haishin.store.engine import open_store

    engine = open_store(state_url)
    yield engine
    engine.dispose()
