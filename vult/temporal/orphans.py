"""Orders whose workflow is gone: the check that finds them.

An order whose row says it can still change (`vult.domain.status.may_still_change`: not
Delivered, or delivered within its return window; a Cancelled one only while money of it
may still move) needs a running
`order-<orderId>` workflow. Terminate (the Web UI, the CLI, a batch) ends one that no
workflow can refuse; a bug can fail one; a row can be written by hand. The orders found
here are resumed by the sweep (workflows/order_sweep.py); a run that completed normally is
never resumed. Read-only from the command line:

    python -m vult.temporal.orphans      (lists them; exit 1 when it finds any)
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from vult.db.models import ORDERS
from vult.domain.contracts import OrderTiming
from vult.domain.status import ENDED, SETTLED_AFTER_CANCEL, OrderStatus

_RETURN_WINDOW = OrderTiming().return_window
_BATCH = 500
_AT_ONCE = 16
NOT_STARTED = "NOT_STARTED"
# Runs that ended as the order's workflow means them to: never resumed.
_ENDED_NORMALLY = frozenset(
    {WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW}
)
_RUNNING_ORDERS = "WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Running'"


def workflow_id(order_id: uuid.UUID) -> str:
    return f"order-{order_id}"


async def how_it_ended(client: Client, order_id: uuid.UUID) -> str | None:
    """How the order's workflow ended when it did not end normally: TERMINATED, FAILED,
    TIMED_OUT or CANCELED (its latest run), NOT_STARTED (none ever ran); None while it runs
    or once it completed."""
    return (await ending(client, order_id))[0]


async def ending(client: Client, order_id: uuid.UUID) -> tuple[str | None, datetime | None]:
    """`how_it_ended`, and when that run closed (None: never started, or not closed)."""
    try:
        found = await client.get_workflow_handle(workflow_id(order_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return NOT_STARTED, None
        raise
    status = found.status
    if status is None or status == WorkflowExecutionStatus.RUNNING or status in _ENDED_NORMALLY:
        return None, None
    return status.name, found.close_time


def _can_still_change(return_window: timedelta) -> object:
    """The rows `may_still_change` holds for, in SQL."""
    c = ORDERS.c
    return or_(
        c.status.not_in([*(s.value for s in ENDED), OrderStatus.Cancelled.value]),
        and_(
            c.status == OrderStatus.Delivered.value,
            c.delivered_date > datetime.now(UTC) - return_window,
        ),
        and_(
            c.status == OrderStatus.Cancelled.value,
            c.resolution_note.is_(None),
            c.stripe_payment_status.is_not(None),
            c.stripe_payment_status.not_in(sorted(SETTLED_AFTER_CANCEL)),
        ),
    )


async def _running(client: Client) -> set[str]:
    """Ids of the running order workflows, from visibility (which may lag a start by a
    moment: every order not listed is asked about on its own)."""
    return {wf.id async for wf in client.list_workflows(_RUNNING_ORDERS, page_size=1000)}


async def orders_without_workflow(
    engine: AsyncEngine,
    client: Client,
    since: datetime | None = None,
    limit: int | None = None,
    return_window: timedelta = _RETURN_WINDOW,
) -> list[uuid.UUID]:
    """Orders (created at or after `since`, if given) that can still change and whose
    workflow is not running and did not end normally, oldest first, at most `limit`."""
    running = await _running(client)
    found: list[uuid.UUID] = []
    gate = asyncio.Semaphore(_AT_ONCE)

    async def gone(order_id: uuid.UUID) -> bool:
        async with gate:
            return await how_it_ended(client, order_id) is not None

    after: tuple[datetime, uuid.UUID] | None = None
    c = ORDERS.c
    while limit is None or len(found) < limit:  # bounded by the table: `after` moves on
        query = (
            select(c.created_date, c.order_id)
            .where(_can_still_change(return_window))  # type: ignore[arg-type]
            .order_by(c.created_date, c.order_id)
            .limit(_BATCH)
        )
        if after is not None:
            query = query.where(
                or_(
                    c.created_date > after[0],
                    and_(c.created_date == after[0], c.order_id > after[1]),
                )
            )
        if since is not None:
            query = query.where(c.created_date >= since)
        async with engine.connect() as conn:
            rows = [(r.created_date, r.order_id) for r in await conn.execute(query)]
        if not rows:
            break
        candidates = [i for _, i in rows if workflow_id(i) not in running]
        flags = await asyncio.gather(*(gone(i) for i in candidates))
        found += [i for i, lost in zip(candidates, flags, strict=True) if lost]
        after = rows[-1]
    return found if limit is None else found[:limit]


async def main() -> int:
    from vult.db.engine import make_engine
    from vult.process.settings import get_settings
    from vult.temporal.client import connect

    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        client = await connect(settings)
        lost = await orders_without_workflow(engine, client, return_window=settings.return_window)
        for order_id in lost:
            ended = await how_it_ended(client, order_id)
            print(f"order {order_id} can still change and has no workflow ({ended})")
    finally:
        await engine.dispose()
    print(f"{len(lost)} order(s) to resume (the order sweep resumes them)")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
