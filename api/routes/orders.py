"""Spec 5.6: the orders controller."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from api import read_model
from api.commands import run_cancel, run_command
from api.deps import CLIENT_COMMAND, CLIENT_WAIT, CommandsDep, EngineDep, OrderChangesDep
from api.errors import InvalidOrder, KeyReused, NotFound
from api.order_changes import MAX_WAIT_SECONDS
from api.order_commands import AlreadyPlaced, key_order_ids, order_id_for_key
from api.order_commands import order_request as order_request_of
from api.validation import check_create_order, parse_json, requested_product_ids
from vult.domain.status import OrderStatus
from vult.wire.schemas import (
    AcceptedResponse,
    ErrorResponse,
    ErrorsResponse,
    OrderDto,
    PaymentIntentDto,
    RefusedResponse,
)

router = APIRouter(prefix="/api/orders", tags=["orders"])

KEY_PLACED_NOTHING = (
    "This Idempotency-Key was used by an earlier request that placed no order; "
    "send the corrected order with a new key"
)


def _as_json(
    order: OrderDto, status_code: int = status.HTTP_200_OK, headers: dict[str, str] | None = None
) -> Response:
    """An order on the wire, serialized once by pydantic and not validated again by FastAPI
    against the response model (these are the hot routes)."""
    return Response(
        order.model_dump_json(by_alias=True),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderDto,
    responses={
        400: {"model": ErrorsResponse},
        422: {"model": ErrorsResponse},
        429: {"model": RefusedResponse},
        503: {"model": RefusedResponse},
    },
    dependencies=[CLIENT_COMMAND],
)
async def create_order(
    request: Request,
    engine: EngineDep,
    commands: CommandsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Place an order: snapshot the products, total it, and start its workflow."""
    commands.refuse_early(new_order=True)  # in a sale, before anything is read
    try:
        data = parse_json(await request.body())
    except ValueError as exc:
        raise InvalidOrder([str(exc)]) from exc
    dto, problems = check_create_order(data)
    now = datetime.now(UTC)
    key_ids = key_order_ids(idempotency_key, now) if idempotency_key else None
    # One connection for all the API reads before placing: the catalogue (every product
    # named, even in a body otherwise invalid, so every error is listed together) and, for
    # a keyed request, whether the key's previous period named an order.
    async with engine.connect() as connection:
        products, unknown = await read_model.catalogue(connection, requested_product_ids(data))
        problems += [f"Product not found: {pid}" for pid in unknown]
        previous_created = None
        if key_ids is not None and dto is not None and not problems:
            previous_created = await read_model.order_created(connection, key_ids[1])
    if problems or dto is None:
        raise InvalidOrder(problems)
    order_request = order_request_of(dto)  # the request, its fingerprint, its quote: once
    fingerprint = order_request.fingerprint()
    priced = commands.price(order_request, products)
    order_id = uuid.uuid4()
    if key_ids is not None:
        if previous_created is None:
            # The first request may have started its order just before the period turned,
            # with its row not yet committed (or its placement parked): its workflow is
            # the order from the moment it started.
            previous_created = await commands.started_at(key_ids[1])
        order_id = order_id_for_key(key_ids, now, previous_created)
    try:
        order_id = (await commands.place(order_id, order_request, fingerprint, priced)).order_id
    except AlreadyPlaced as placed_before:
        order_id = placed_before.order_id
    async with engine.connect() as connection:
        placed = await read_model.placed_order(connection, order_id)
    if placed is None:  # the row is committed before the update answers
        raise InvalidOrder([KEY_PLACED_NOTHING])
    order, placed_by = placed
    if idempotency_key and placed_by is not None and placed_by != fingerprint:
        raise KeyReused()  # a key is bound to the request it first came with
    return _as_json(
        order, status.HTTP_201_CREATED, headers={"Location": f"/api/orders/{order.order_id}"}
    )


@router.get("/{order_id}", response_model=OrderDto, responses={404: {"model": ErrorResponse}})
async def get_order(order_id: uuid.UUID, engine: EngineDep) -> Response:
    """Read an order with its line items."""
    # The hottest route: a bare connection, held only for the two statements.
    async with engine.connect() as connection:
        order = await read_model.get_order(connection, order_id)
    if order is None:
        raise NotFound("Order not found")
    return _as_json(order)


@router.get(
    "/{order_id}/status-change",
    response_model=OrderDto,
    responses={
        400: {"model": ErrorsResponse},
        404: {"model": ErrorResponse},
        429: {"model": RefusedResponse},
    },
    dependencies=[CLIENT_WAIT],
)
async def await_status_change(
    order_id: uuid.UUID,
    engine: EngineDep,
    changes: OrderChangesDep,
    from_status: Annotated[OrderStatus, Query(alias="from")],
    timeout: Annotated[float, Query(gt=0, le=MAX_WAIT_SECONDS)] = 20.0,
) -> Response:
    """The order once its status is no longer `from`, or as it is after `timeout` seconds:
    a checkout page waits here for its payment to be confirmed, instead of polling."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with changes.watching(order_id) as watch:
        while True:
            async with engine.connect() as connection:
                order = await read_model.get_order(connection, order_id)
            if order is None:
                raise NotFound("Order not found")
            left = deadline - loop.time()
            if order.status != from_status.value or left <= 0:
                return _as_json(order)
            await watch.changed(min(left, changes.recheck_within()))


@router.post(
    "/{order_id}/payment",
    response_model=PaymentIntentDto,
    responses={
        400: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        429: {"model": RefusedResponse},
        503: {"model": RefusedResponse},
    },
    dependencies=[CLIENT_COMMAND],
)
async def create_payment(
    order_id: uuid.UUID, commands: CommandsDep, engine: EngineDep
) -> PaymentIntentDto:
    """Create (or return the open) Stripe PaymentIntent for a Pending or Failed order."""
    return await run_command(
        engine,
        commands,
        order_id,
        "Cannot process payment for order",
        commands.request_payment(order_id),
    )


@router.post(
    "/{order_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        202: {"model": AcceptedResponse},
        400: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        429: {"model": RefusedResponse},
        503: {"model": RefusedResponse},
    },
    dependencies=[CLIENT_COMMAND],
)
async def cancel_order(order_id: uuid.UUID, commands: CommandsDep, engine: EngineDep) -> None:
    """Cancel an order; an open payment is cancelled at Stripe, a taken one refunded.
    202 when the payment is mid-charge: recorded, and completed once it settles."""
    await run_cancel(engine, commands, order_id, commands.cancel(order_id, "Cancelled by customer"))
