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

T = TypeVar("T")


async def run_command(
    engine: AsyncEngine, order_id: uuid.UUID, action: str, command: Awaitable[T]
) -> T:
    """Await the command; a finished workflow's refusal names the order's recorded status
    ("Cannot cancel order with status: Delivered"), or 404 when there is no such order."""
    try:
        return await command
    except WorkflowClosed as exc:
        async with engine.connect() as connection:
            found = await read_model.order_status(connection, order_id)
        if found is None:
            raise NotFound("Order not found") from exc
        raise BadRequest(f"{action} with status: {found}") from exc
