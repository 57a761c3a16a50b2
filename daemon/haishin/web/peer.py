"""Who is on the other end of an HTTP request, for the consent record."""

from __future__ import annotations

from aiohttp import web


def client_address(request: web.Request) -> str:
    """The citizen's address for the consent record (特定電子メール法).

    Behind the reverse proxy on this host (deploy/README.md) every request comes from
    loopback; the proxy appends the real client to X-Forwarded-For, so the rightmost entry
    is the one our own proxy wrote. From anywhere else the header is not believed."""
    peer = request.remote or "?"
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and peer in ("127.0.0.1", "::1"):
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return peer
