"""The consent record names the citizen, not our own reverse proxy (特定電子メール法)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from haishin.web.peer import client_address


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # our nginx on this host
        ("127.0.0.1", "10.0.0.1, 203.0.113.9", "203.0.113.9"),  # the entry nginx appended
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not through our proxy: not believed
        ("127.0.0.1", None, "127.0.0.1"),
    ],
)
def test_client_address(remote: str, forwarded: str | None, expected: str) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("POST", "/confirm/x", headers=headers).clone(remote=remote)
    assert client_address(request) == expected
