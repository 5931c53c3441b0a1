"""Running a command on an order's workflow from a route, with one answer for a workflow
that has finished (delivered, or cancelled and past its grace period)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from api import read_model
from api.errors import BadRequest, NotFound
from api.order_commands import WorkflowClosed
from vult.domain.status import OrderStatus

T = TypeVar("T")


async def run_command(
    engine: AsyncEngine, order_id: uuid.UUID, action: str, command: Awaitable[T]
) -> T:
    """Await the command; a finished workflow's refusal names the order's recorded status
    ("Cannot cancel order with status: Delivered"), or 404 when there is no such order."""
    try:
        return await command
    except WorkflowClosed as exc:
        raise await _refusal(engine, order_id, action) from exc


async def run_cancel(engine: AsyncEngine, order_id: uuid.UUID, command: Awaitable[None]) -> None:
    """A cancel, safe to send again (the README's promise): an order whose workflow has
    closed Cancelled answers as the cancel did, doing nothing."""
    try:
        await command
    except WorkflowClosed as exc:
        async with engine.connect() as connection:
            found = await read_model.order_status(connection, order_id)
        if found != OrderStatus.Cancelled.value:
            raise await _refusal(engine, order_id, "Cannot cancel order") from exc


async def _refusal(engine: AsyncEngine, order_id: uuid.UUID, action: str) -> BadRequest | NotFound:
    async with engine.connect() as connection:
        found = await read_model.order_status(connection, order_id)
    if found is None:
        return NotFound("Order not found")
    return BadRequest(f"{action} with status: {found}")
