"""The one place a database URL's driver prefix is written."""

from __future__ import annotations

_ASYNC = "postgresql+psycopg://"
_PLAIN_PREFIXES = ("postgresql://", "postgres://")


def async_url(url: str) -> str:
    """For SQLAlchemy with async psycopg 3; accepts the usual postgres:// and postgresql://."""
    for prefix in _PLAIN_PREFIXES:
        if url.startswith(prefix):
            return _ASYNC + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """For psycopg (or any libpq client) used directly."""
    if url.startswith(_ASYNC):
        return "postgresql://" + url[len(_ASYNC) :]
    return url
