"""Order rows without a workflow: the check that finds any.

Since placement parks instead of failing, every order row is written by its running
workflow. A row without one predates that (a workflow that failed after the insert), or was
written by hand. This lists them, read-only:

    python -m vult.temporal.orphans      (exit 1 when it finds any)

Each order's workflow id is `order-<orderId>`; a workflow that exists in any state (running
or closed) counts: a closed one is the order's history, and resuming it is ops' call
(docs/operations.md).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from vult.db.models import ORDERS

_BATCH = 500
_AT_ONCE = 16


async def orders_without_workflow(
    engine: AsyncEngine, client: Client, since: datetime | None = None
) -> list[uuid.UUID]:
    """Every order (created at or after `since`, if given) whose row exists and whose
    workflow Temporal has never heard of."""
    found: list[uuid.UUID] = []
    gate = asyncio.Semaphore(_AT_ONCE)

    async def missing(order_id: uuid.UUID) -> bool:
        async with gate:
            try:
                await client.get_workflow_handle(f"order-{order_id}").describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return True
                raise
            return False

    after: uuid.UUID | None = None
    while True:  # bounded by the table: each batch moves `after` forward
        query = select(ORDERS.c.order_id).order_by(ORDERS.c.order_id).limit(_BATCH)
        if after is not None:
            query = query.where(ORDERS.c.order_id > after)
        if since is not None:
            query = query.where(ORDERS.c.created_date >= since)
        async with engine.connect() as conn:
            ids = list((await conn.scalars(query)).all())
        if not ids:
            return found
        flags = await asyncio.gather(*(missing(i) for i in ids))
        found += [i for i, lost in zip(ids, flags, strict=True) if lost]
        after = ids[-1]


async def main() -> int:
    from vult.db.engine import make_engine
    from vult.process.settings import get_settings
    from vult.temporal.client import connect

    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        lost = await orders_without_workflow(engine, await connect(settings))
    finally:
        await engine.dispose()
    for order_id in lost:
        print(f"order {order_id} has no workflow (order-{order_id})")
    print(f"{len(lost)} order row(s) without a workflow")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
