"""Running a command on an order's workflow from a route, with one answer for an order
whose workflow is not running: finished (delivered, or cancelled and past its grace
period), or gone while the order could still change, which resumes it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from api import read_model
from api.errors import BadRequest, BeingResumed, NotFound
from api.order_commands import OrderCommands, WorkflowClosed
from vult.domain.status import OrderStatus, may_still_change, returns_open

T = TypeVar("T")


async def run_command(
    engine: AsyncEngine,
    commands: OrderCommands,
    order_id: uuid.UUID,
    action: str,
    command: Awaitable[T],
) -> T:
    """Await the command. An order whose workflow is gone while it can still change is
    resumed at once and answered 503 saying so; a finished workflow's refusal names the
    order's recorded status ("Cannot cancel order with status: Delivered"), or 404 when
    there is no such order."""
    try:
        return await command
    except WorkflowClosed as exc:
        raise await _refusal(engine, commands, order_id, action) from exc


async def run_cancel(
    engine: AsyncEngine, commands: OrderCommands, order_id: uuid.UUID, command: Awaitable[None]
) -> None:
    """A cancel, safe to send again (docs/http.md's promise): an order whose workflow has
    closed Cancelled (and settled) answers as the cancel did, doing nothing."""
    try:
        await command
    except WorkflowClosed as exc:
        refusal = await _refusal(engine, commands, order_id, "Cannot cancel order")
        if not (isinstance(refusal, _StatusRefusal) and refusal.status == OrderStatus.Cancelled):
            raise refusal from exc


async def resume_if_gone(engine: AsyncEngine, commands: OrderCommands, order_id: uuid.UUID) -> bool:
    """When the order can still change and its workflow ended without finishing it
    (terminated, failed, never started): ask for the resume now, and True."""
    async with engine.connect() as connection:
        row = await read_model.order_progress(connection, order_id)
    return row is not None and await _resumed(commands, order_id, row)


async def _resumed(commands: OrderCommands, order_id: uuid.UUID, row: read_model.Progress) -> bool:
    open_for_returns = returns_open(row.delivered_date, commands.return_window, datetime.now(UTC))
    if not may_still_change(row.status, row.payment_status, row.resolution_note, open_for_returns):
        return False
    ended = await commands.how_it_ended(order_id)
    if ended is None:
        return False
    await commands.resume(order_id)
    return True


class _StatusRefusal(BadRequest):
    """400 naming the status the row records."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


async def _refusal(
    engine: AsyncEngine, commands: OrderCommands, order_id: uuid.UUID, action: str
) -> BadRequest | NotFound | BeingResumed:
    async with engine.connect() as connection:
        row = await read_model.order_progress(connection, order_id)
    if row is None:
        return NotFound("Order not found")
    status = row.status
    if await _resumed(commands, order_id, row):
        return BeingResumed(
            f"This order ({status}) has no running workflow: its last run ended before the "
            "order did. It is being resumed from the order's record and Stripe now; send the "
            "request again in about 15 seconds"
        )
    return _StatusRefusal(f"{action} with status: {status}", status)
