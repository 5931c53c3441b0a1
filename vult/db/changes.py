"""Row-change notifications: the activities announce each committed change to an order on a
PostgreSQL channel, so the API can answer a waiting checkout page at once instead of being
polled (api/order_changes.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "vult_order_changed"


async def announce(conn: AsyncConnection, order_id: uuid.UUID) -> None:
    """Queued in the caller's transaction: listeners hear it when (and only if) it commits."""
    await conn.execute(select(func.pg_notify(CHANNEL, str(order_id))))
