"""What the emulator's test controls (`/_vult/...`) share: they answer whoever holds a secret
key of the account, as the Dashboard would (development only)."""

from __future__ import annotations

from aiohttp import web


def secret_key(request: web.Request) -> bool:
    """The request carries a secret key (`Bearer sk_...`)."""
    header = request.headers.get("Authorization", "")
    return header.startswith("Bearer sk_") and len(header) > len("Bearer sk_")
