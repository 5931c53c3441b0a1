"""The order as every reader sees it: the API's GET /api/orders/{id} and the payload of
each order event (docs/events.md) are the same OrderDto, read the same way."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vult.db import addresses
from vult.db.models import LINE_ITEMS, ORDER_RETURNS, ORDERS
from vult.domain.pricing import line_subtotal
from vult.domain.status import OrderStatus
from vult.wire.schemas import AddressDto, LineItemDto, LineQuantityDto, OrderDto, ReturnDto

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
        customer_email_refused=o.customer_email_refused,
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
