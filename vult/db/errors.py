"""Telling a database error that no retry can fix from one that a retry may."""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError


def is_permanent(exc: DBAPIError) -> bool:
    """The statement itself was refused (bad data, a broken constraint, bad SQL): the same
    statement will be refused again. A lost connection or a server restart is not this."""
    return not exc.connection_invalidated and isinstance(
        exc, DataError | IntegrityError | ProgrammingError
    )


def described(exc: DBAPIError) -> str:
    """What went wrong, without the statement or its parameters (customer data)."""
    return f"{type(exc.orig).__name__ if exc.orig else type(exc).__name__}"
