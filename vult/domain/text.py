"""Text the service accepts: what PostgreSQL can store and a person could have typed."""

from __future__ import annotations

import unicodedata

UNSTORABLE = "must not contain control characters, NUL or unpaired surrogates"


def is_storable_line(text: str) -> bool:
    """One line of text: no control characters (NUL, which PostgreSQL refuses, among
    them) and no lone surrogates (not valid UTF-8)."""
    return not any(unicodedata.category(c) in ("Cc", "Cs") for c in text)
