"""No module in the package over 400 lines (issue 13 item 6: small modules in folders
named for their role, style.md 10)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "daemon" / "haishin"
LIMIT = 400


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_over_the_limit() -> None:
    over = {
        str(p.relative_to(PACKAGE)): n
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := _lines(p)) > LIMIT
    }
    assert over == {}
