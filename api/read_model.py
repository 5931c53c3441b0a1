"""Reads from PostgreSQL, the read model the activities write. The API never writes it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.schemas import (
    AddressDto,
    LineItemDto,
    LineQuantityDto,
    OrderDto,
    OrderPageDto,
    OrderSummaryDto,
    ProductDto,
    ReturnDto,
)
from vult.db import addresses
from vult.db.catalogue import products as catalogue_products
from vult.db.models import LINE_ITEMS, ORDER_PAYMENT_INTENTS, ORDER_RETURNS, ORDERS, PRODUCTS
from vult.domain.pricing import line_subtotal
from vult.domain.snapshot import CatalogueProduct
from vult.domain.status import OrderStatus

_ORDERS = ORDERS
_ITEMS = LINE_ITEMS
# The hot read path's two statements, built once (docs/performance.md).
_ORDER_BY_ID = select(_ORDERS).where(_ORDERS.c.order_id == bindparam("order_id"))
_ITEMS_OF_ORDER = (
    select(_ITEMS).where(_ITEMS.c.order_id == bindparam("order_id")).order_by(_ITEMS.c.position)
)


_RETURNS_OF_ORDER = (
    select(ORDER_RETURNS)
    .where(ORDER_RETURNS.c.order_id == bindparam("order_id"))
    .order_by(ORDER_RETURNS.c.created_date)
)


async def get_order(connection: AsyncConnection, order_id: uuid.UUID) -> OrderDto | None:
    """Two plain queries, no ORM identity map or relationship loading."""
    placed = await placed_order(connection, order_id)
    return None if placed is None else placed[0]


async def placed_order(
    connection: AsyncConnection, order_id: uuid.UUID
) -> tuple[OrderDto, str | None] | None:
    """The order and the fingerprint of the request that placed it, in the same reads."""
    key = {"order_id": order_id}
    order = (await connection.execute(_ORDER_BY_ID, key)).first()
    if order is None:
        return None
    items = await connection.execute(_ITEMS_OF_ORDER, key)
    returns: Sequence[Row[Any]] = []
    if order.status in (OrderStatus.Shipped.value, OrderStatus.Delivered.value):
        returns = (await connection.execute(_RETURNS_OF_ORDER, key)).all()  # only once shipped
    return order_dto(order, items.all(), returns), order.request_fingerprint


async def order_of_payment_intent(engine: AsyncEngine, payment_intent_id: str) -> uuid.UUID | None:
    """The order this service created the PaymentIntent for (recorded with the order's
    first write naming it), or that recorded it before that list existed."""
    async with engine.connect() as connection:
        found: uuid.UUID | None = await connection.scalar(
            select(ORDER_PAYMENT_INTENTS.c.order_id)
            .where(ORDER_PAYMENT_INTENTS.c.payment_intent_id == payment_intent_id)
            .union_all(
                select(ORDERS.c.order_id).where(
                    ORDERS.c.stripe_payment_intent_id == payment_intent_id
                )
            )
            .limit(1)
        )
    return found


async def order_exists(engine: AsyncEngine, order_id: uuid.UUID) -> bool:
    async with engine.connect() as connection:
        found = await connection.scalar(
            select(ORDERS.c.order_id).where(ORDERS.c.order_id == order_id)
        )
    return found is not None


async def catalogue(
    connection: AsyncConnection, ids: Iterable[str]
) -> tuple[dict[uuid.UUID, CatalogueProduct], list[str]]:
    """Each product named, as the catalogue has it now (the order's snapshot), and the ids
    (as given) that name none; ids that are not GUIDs are in neither (validation reports
    them)."""
    parsed: dict[str, uuid.UUID] = {}
    for raw in ids:
        try:
            parsed[raw] = uuid.UUID(raw)
        except ValueError:
            continue
    found = await catalogue_products(connection, parsed.values())
    return found, [raw for raw, pid in parsed.items() if pid not in found]


async def list_products(connection: AsyncConnection) -> list[ProductDto]:
    rows = await connection.execute(select(PRODUCTS).order_by(PRODUCTS.c.name))
    return [
        ProductDto(
            product_id=p.product_id,
            name=p.name,
            size=p.size,
            estimated_msrp=p.estimated_msrp,
            image_urls=list(p.image_urls),
        )
        for p in rows
    ]


def order_dto(o: Row[Any], items: Sequence[Row[Any]], returns: Sequence[Row[Any]] = ()) -> OrderDto:
    """From an orders row, its line_items rows and its returns (Core rows: columns by
    name)."""
    billing = (
        AddressDto.model_construct(**addresses.fields(o, addresses.BILLING))
        if o.use_separate_billing_address
        else None
    )
    return OrderDto.model_construct(
        order_id=o.order_id,
        order_number=o.order_number,
        customer_email=o.customer_email,
        status=o.status,
        sub_total=o.sub_total,
        tax=o.tax,
        shipping_cost=o.shipping_cost,
        total=o.total,
        currency=o.currency,
        shipping_address=AddressDto.model_construct(**addresses.fields(o, addresses.SHIPPING)),
        billing_address=billing,
        line_items=[
            LineItemDto.model_construct(
                line_item_id=li.line_item_id,
                product_id=li.product_id,
                product_name=li.product_name,
                product_size=li.product_size,
                product_image_url=li.product_image_url,
                unit_price=li.unit_price,
                quantity=li.quantity,
                sub_total=line_subtotal(li.unit_price, li.quantity),
                quantity_shipped=li.quantity_shipped,
                quantity_returned=li.quantity_returned,
            )
            for li in items
        ],
        created_date=o.created_date,
        updated_date=o.updated_date,
        payment_error_message=o.payment_error_message,
        cancellation_reason=o.cancellation_reason,
        shipping_carrier=o.shipping_carrier,
        tracking_number=o.tracking_number,
        payment_status=o.stripe_payment_status,
        amount_refunded=o.amount_refunded if o.amount_refunded is not None else Decimal("0.00"),
        dispute_status=o.dispute_status,
        resolution_note=o.resolution_note,
        resumed_at=o.resumed_at,
        amount_captured=o.amount_captured,
        returns=[
            ReturnDto.model_construct(
                return_key=r.return_key,
                reason=r.reason,
                amount=r.amount,
                line_items=[
                    LineQuantityDto.model_construct(
                        line_item_id=uuid.UUID(str(li["lineItemId"])), quantity=li["quantity"]
                    )
                    for li in r.line_items
                ],
                refund_id=r.refund_id,
                refund_status=r.refund_status,
                created_date=r.created_date,
            )
            for r in returns
        ],
    )


async def order_created(connection: AsyncConnection, order_id: uuid.UUID) -> datetime | None:
    found: datetime | None = await connection.scalar(
        select(ORDERS.c.created_date).where(ORDERS.c.order_id == order_id)
    )
    return found


async def order_status(connection: AsyncConnection, order_id: uuid.UUID) -> str | None:
    return await connection.scalar(select(ORDERS.c.status).where(ORDERS.c.order_id == order_id))


@dataclass(frozen=True)
class Progress:
    """What says whether the order can still change (vult.domain.status.may_still_change)."""

    status: str
    payment_status: str | None
    resolution_note: str | None
    delivered_date: datetime | None


async def order_progress(connection: AsyncConnection, order_id: uuid.UUID) -> Progress | None:
    row = (
        await connection.execute(
            select(
                ORDERS.c.status,
                ORDERS.c.stripe_payment_status,
                ORDERS.c.resolution_note,
                ORDERS.c.delivered_date,
            ).where(ORDERS.c.order_id == order_id)
        )
    ).one_or_none()
    return None if row is None else Progress(*row)


@dataclass(frozen=True)
class OrderFilter:
    status: str | None = None
    customer_email: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    resumed: bool | None = None  # only orders whose workflow was (or was never) resumed


async def list_orders(
    connection: AsyncConnection, where: OrderFilter, page: int, page_size: int
) -> OrderPageDto:
    """Newest first; the email matches case-insensitively; the date range is [from, to)."""
    conditions = []
    if where.status:
        conditions.append(ORDERS.c.status == where.status)
    if where.customer_email:
        conditions.append(func.lower(ORDERS.c.customer_email) == where.customer_email.lower())
    if where.created_from:
        conditions.append(ORDERS.c.created_date >= where.created_from)
    if where.created_to:
        conditions.append(ORDERS.c.created_date < where.created_to)
    if where.resumed is not None:
        resumed = ORDERS.c.resumed_at.is_not(None)
        conditions.append(resumed if where.resumed else ~resumed)
    total = await connection.scalar(select(func.count()).select_from(ORDERS).where(*conditions))
    rows = await connection.execute(
        select(
            ORDERS.c.order_id,
            ORDERS.c.order_number,
            ORDERS.c.customer_email,
            ORDERS.c.status,
            ORDERS.c.total,
            ORDERS.c.currency,
            ORDERS.c.created_date,
            ORDERS.c.updated_date,
            ORDERS.c.resumed_at,
        )
        .where(*conditions)
        .order_by(ORDERS.c.created_date.desc(), ORDERS.c.order_id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return OrderPageDto(
        items=[OrderSummaryDto.model_construct(**row._asdict()) for row in rows],
        page=page,
        page_size=page_size,
        total_count=total or 0,
    )
