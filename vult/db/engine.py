"""The engine, built by whoever owns the process (worker, API, tests)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    create_async_engine,
)


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    # No pre-ping: it cost a round trip on every checkout. After a database restart the
    # first statement on a dead connection fails, and SQLAlchemy then discards every
    # connection the pool held; activities retry, API callers get a 503 once.
    # No overflow: an overflow connection is closed when returned, so a steady load just
    # above the pool size would open a PostgreSQL backend per request; beyond `pool_size`
    # callers wait their turn for a connection instead (statements take milliseconds).
    # hide_parameters: an error's text never carries the statement's values (customer data).
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=0, hide_parameters=True
    )
