"""Reading every object of a kind from the Stripe emulator, page by page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_PAGES = 10_000


def every(listing: Callable[[Any], Any]) -> list[dict[str, Any]]:
    """All pages of `listing(params)` (a Stripe list call), as plain dicts; bounded."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = listing({"limit": 100, **({"starting_after": after} if after else {})})
        found += [item.to_dict() for item in page.data]
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id
    raise RuntimeError(f"more than {MAX_PAGES} pages")
