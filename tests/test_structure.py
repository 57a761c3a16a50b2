"""The package's structure is enforced, not hoped for (issue 13 item 2): the layers
contract in pyproject.toml (import-linter) and .ci/import_cycles.py both pass on the tree,
and each fails on a deliberate upward or circular import in a temporary copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    shutil.copytree(
        ROOT / "daemon" / "haishin",
        tree / "daemon" / "haishin",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _run(tree: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "daemon")}
    return subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return _run(tree, str(BIN / "lint-imports"), "--no-cache")


def cycles(tree: Path) -> subprocess.CompletedProcess[str]:
    return _run(tree, sys.executable, str(ROOT / ".ci" / "import_cycles.py"))


def _append(tree: Path, module: str, line: str) -> Path:
    path = tree / "daemon" / "haishin" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    return path


def _restore(path: Path, line: str) -> None:
    path.write_text(path.read_text().replace(f"\n{line}\n", ""))


def test_the_tree_keeps_both(copy: Path) -> None:
    kept = lint_imports(copy)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "1 kept, 0 broken" in kept.stdout
    acyclic = cycles(copy)
    assert acyclic.returncode == 0, acyclic.stdout + acyclic.stderr


def test_an_upward_import_breaks_the_layers(copy: Path) -> None:
    line = "from . import service  # noqa: F401"
    path = _append(copy, "clock.py", line)
    try:
        broken = lint_imports(copy)
    finally:
        _restore(path, line)
    assert broken.returncode != 0
    assert "one downward stack BROKEN" in broken.stdout
    assert "haishin.clock -> haishin.service" in broken.stdout


def test_siblings_that_must_stay_apart(copy: Path) -> None:
    line = "from .. import web  # noqa: F401"
    path = _append(copy, "inbound/paths.py", line)
    try:
        broken = lint_imports(copy)
    finally:
        _restore(path, line)
    assert broken.returncode != 0
    assert "haishin.inbound.paths -> haishin.web" in broken.stdout


def test_a_circle_of_modules_fails(copy: Path) -> None:
    # inside one layer, where the layers contract cannot see it: rules imports problems
    line = "from . import rules  # noqa: F401"
    path = _append(copy, "registry/problems.py", line)
    try:
        assert lint_imports(copy).returncode == 0  # the layers alone miss it
        found = cycles(copy)
    finally:
        _restore(path, line)
    assert found.returncode == 1
    assert "circle of modules" in found.stdout
    assert "haishin.registry.problems imports haishin.registry.rules" in found.stdout


def test_a_circle_of_folders_fails(copy: Path) -> None:
    # score imports classify.model; classify.verp importing score closes no circle of
    # modules (nothing in score leads back to verp), but the folder and the module do
    line = "from .. import score  # noqa: F401"
    path = _append(copy, "bounces/classify/verp.py", line)
    try:
        found = cycles(copy)
    finally:
        _restore(path, line)
    assert found.returncode == 1, found.stdout
    assert "circle of modules" not in found.stdout
    assert "folders and modules in haishin.bounces" in found.stdout
    assert "haishin.bounces.classify <-> haishin.bounces.score" in found.stdout
