"""The product catalogue as an order's snapshot reads it: one statement, for the API that
prices a new order and for the activity that prices an order placed before the API did."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from vult.db.models import PRODUCTS
from vult.domain.snapshot import CatalogueProduct

_P = PRODUCTS.c


async def products(
    connection: AsyncConnection, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, CatalogueProduct]:
    """Each of `ids` the catalogue has, as it has it now; ids it lacks are absent."""
    if not ids:
        return {}
    rows = await connection.execute(
        select(_P.product_id, _P.name, _P.size, _P.image_urls, _P.estimated_msrp).where(
            _P.product_id.in_(set(ids))
        )
    )
    return {
        r.product_id: CatalogueProduct(
            name=r.name,
            size=r.size,
            image_url=r.image_urls[0] if r.image_urls else None,
            price=r.estimated_msrp,
        )
        for r in rows
    }
