"""Reads from PostgreSQL, the read model the activities write. The API never writes it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vult.db.catalogue import products as catalogue_products
from vult.db.models import ORDER_PAYMENT_INTENTS, ORDERS, PRODUCTS
from vult.domain.snapshot import CatalogueProduct
from vult.wire.orders import get_order, order_dto, placed_order
from vult.wire.schemas import (
    OrderPageDto,
    OrderSummaryDto,
    ProductDto,
)

__all__ = ["get_order", "order_dto", "placed_order"]  # the API's reads of one order


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
