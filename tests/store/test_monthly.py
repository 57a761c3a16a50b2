"""A month as `haishin report --month` takes it and as the report labels it."""

from __future__ import annotations

import pytest

from haishin.store.monthly import Month


@pytest.mark.parametrize("text", ["0002-01", "0999-12", "2026-11", "9998-12"])
def test_a_label_reads_back_as_its_month(text: str) -> None:
    """The year 2 was labelled "2-01" (strftime's %Y does not pad it on glibc)."""
    month = Month.parse(text)
    assert month.label == text and Month.parse(month.label) == month
