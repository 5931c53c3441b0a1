"""Ops endpoints (bearer token): list and read orders, drive fulfilment, cancel."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, status

from api import read_model
from api.commands import run_cancel, run_command
from api.deps import CommandsDep, EngineDep, SettingsDep
from api.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized
from vult.domain.contracts import LineQuantity, ReturnRequest
from vult.domain.status import OrderStatus
from vult.domain.text import UNSTORABLE, is_storable_line
from vult.wire.schemas import (
    AcceptedResponse,
    CancelOrderDto,
    CreateReturnDto,
    ErrorResponse,
    LineQuantityDto,
    OrderDto,
    OrderPageDto,
    ResolveOrderDto,
    ReturnDto,
    ShipOrderDto,
)


async def require_ops(settings: SettingsDep, authorization: Annotated[str, Header()] = "") -> None:
    expected = settings.ops_api_token.get_secret_value()
    if not expected:
        # Never a default token: one anybody could read in this repository.
        raise ServiceUnavailable("The ops API is off: this API was started without OPS_API_TOKEN")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthorized("A valid ops bearer token is required")


router = APIRouter(
    prefix="/api/ops/orders",
    tags=["ops"],
    dependencies=[Depends(require_ops)],
    responses={401: {"model": ErrorResponse}},
)


# Deep enough for any real list (100 million orders at 100 a page), small enough that the
# offset always fits PostgreSQL's bigint.
MAX_PAGE = 1_000_000

_COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
}


def _lines(named: list[LineQuantityDto] | None) -> list[LineQuantity] | None:
    """The lines a shipment or a return names, as the workflow takes them; None: none named."""
    if named is None:
        return None
    return [LineQuantity(line_item_id=str(li.line_item_id), quantity=li.quantity) for li in named]


@router.get("", response_model=OrderPageDto)
async def list_orders(
    engine: EngineDep,
    order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
    customer_email: Annotated[str | None, Query(alias="customerEmail", max_length=256)] = None,
    created_from: Annotated[datetime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[datetime | None, Query(alias="createdTo")] = None,
    resumed: Annotated[bool | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> OrderPageDto:
    """List orders, newest first, filtered by status, customer email, created date, and
    whether their workflow was resumed after ending early (`resumed=true`)."""
    if customer_email is not None and not is_storable_line(customer_email):
        raise BadRequest(f"customerEmail {UNSTORABLE}")
    where = read_model.OrderFilter(
        status=order_status.value if order_status else None,
        customer_email=customer_email,
        created_from=created_from,
        created_to=created_to,
        resumed=resumed,
    )
    async with engine.connect() as connection:
        return await read_model.list_orders(connection, where, page, page_size)


@router.get("/{order_id}", response_model=OrderDto, responses={404: {"model": ErrorResponse}})
async def get_order(order_id: uuid.UUID, engine: EngineDep) -> OrderDto:
    """Read one order."""
    async with engine.connect() as connection:
        order = await read_model.get_order(connection, order_id)
    if order is None:
        raise NotFound("Order not found")
    return order


@router.post(
    "/{order_id}/processing", status_code=status.HTTP_204_NO_CONTENT, responses=_COMMAND_RESPONSES
)
async def start_processing(order_id: uuid.UUID, commands: CommandsDep, engine: EngineDep) -> None:
    """Confirmed -> Processing."""
    await run_command(
        engine,
        commands,
        order_id,
        "Cannot start processing an order",
        commands.start_processing(order_id),
    )


@router.post(
    "/{order_id}/ship", status_code=status.HTTP_204_NO_CONTENT, responses=_COMMAND_RESPONSES
)
async def ship(
    order_id: uuid.UUID, body: ShipOrderDto, commands: CommandsDep, engine: EngineDep
) -> None:
    """Processing -> Shipped, with the carrier and tracking number, and optionally the
    lines shipped (`lineItems`; without it, everything). Capture at shipment captures the
    shipped lines' share first (the rest of the authorization is released); with automatic
    capture the share of the lines not shipped is refunded. A capture Stripe refuses: 400,
    the order stays Processing and needs attention."""
    await run_command(
        engine,
        commands,
        order_id,
        "Cannot ship an order",
        commands.ship(order_id, body.carrier, body.tracking_number, _lines(body.line_items)),
    )


@router.post("/{order_id}/returns", response_model=ReturnDto, responses=_COMMAND_RESPONSES)
async def take_return(
    order_id: uuid.UUID,
    body: CreateReturnDto,
    commands: CommandsDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> ReturnDto:
    """Refund some lines (their share of the total: merchandise and its tax, no shipping)
    or an amount of a shipped or delivered order, with a reason. The `Idempotency-Key`
    header is required: a request sent again with it refunds once and answers the same. A
    return larger than what is still held at Stripe (Dashboard refunds and disputes count)
    is refused (400) and changes nothing."""
    if not idempotency_key or not idempotency_key.strip():
        raise BadRequest("An Idempotency-Key header is required: each return needs its own")
    if (body.line_items is None) == (body.amount is None):
        raise BadRequest("A return names either lineItems or an amount")
    request = ReturnRequest(
        key=idempotency_key.strip(),
        reason=body.reason,
        amount=body.amount,
        line_items=_lines(body.line_items),
    )
    record = await run_command(
        engine,
        commands,
        order_id,
        "Cannot take a return of an order",
        commands.take_return(order_id, request),
    )
    return ReturnDto(
        return_key=record.key,
        reason=record.reason,
        amount=record.amount,
        line_items=[
            LineQuantityDto(line_item_id=uuid.UUID(li.line_item_id), quantity=li.quantity)
            for li in record.line_items
        ],
        refund_id=record.refund_id or None,
        refund_status=record.refund_status or None,
        created_date=record.at,
    )


@router.post(
    "/{order_id}/deliver", status_code=status.HTTP_204_NO_CONTENT, responses=_COMMAND_RESPONSES
)
async def deliver(order_id: uuid.UUID, commands: CommandsDep, engine: EngineDep) -> None:
    """Shipped -> Delivered; the order's workflow then completes."""
    await run_command(
        engine, commands, order_id, "Cannot deliver an order", commands.deliver(order_id)
    )


@router.post(
    "/{order_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_COMMAND_RESPONSES, 202: {"model": AcceptedResponse}},
)
async def cancel(
    order_id: uuid.UUID, body: CancelOrderDto, commands: CommandsDep, engine: EngineDep
) -> None:
    """Cancel with a reason; refunds a taken payment."""
    await run_cancel(engine, commands, order_id, commands.cancel(order_id, body.reason))


@router.post(
    "/{order_id}/retry", status_code=status.HTTP_204_NO_CONTENT, responses=_COMMAND_RESPONSES
)
async def retry(order_id: uuid.UUID, commands: CommandsDep, engine: EngineDep) -> None:
    """Try an order's stuck step again now (an order that needs attention)."""
    await run_command(engine, commands, order_id, "Cannot retry an order", commands.retry(order_id))


@router.post(
    "/{order_id}/resolve", status_code=status.HTTP_204_NO_CONTENT, responses=_COMMAND_RESPONSES
)
async def resolve(
    order_id: uuid.UUID, body: ResolveOrderDto, commands: CommandsDep, engine: EngineDep
) -> None:
    """Record that an order's problem was handled outside the service (with a note: what
    was done, by whom): its stuck step is not retried any more and its flag clears."""
    await run_command(
        engine, commands, order_id, "Cannot resolve an order", commands.resolve(order_id, body.note)
    )
