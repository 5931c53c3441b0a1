"""The read-path reference: the same GET /api/orders/{id} answer from a plain FastAPI app
with one async PostgreSQL query per table and no Temporal, no dependencies, no middleware.

    uvicorn --factory dev.bench.plain_api:app_factory   (DATABASE_URL from the environment)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from vult.db.urls import async_url

ORDER_SQL = text("SELECT * FROM orders WHERE order_id = :id")
ITEMS_SQL = text("SELECT * FROM line_items WHERE order_id = :id ORDER BY position")


def app_factory() -> FastAPI:
    url = async_url(os.environ["DATABASE_URL"])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_async_engine(url, pool_size=10, max_overflow=10)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/orders/{order_id}")
    async def get_order(order_id: uuid.UUID) -> dict[str, object]:
        async with app.state.engine.connect() as conn:
            order = (await conn.execute(ORDER_SQL, {"id": order_id})).mappings().first()
            if order is None:
                raise HTTPException(404)
            items = (await conn.execute(ITEMS_SQL, {"id": order_id})).mappings().all()
        return {
            "orderId": str(order["order_id"]),
            "orderNumber": order["order_number"],
            "customerEmail": order["customer_email"],
            "status": order["status"],
            "subTotal": float(order["sub_total"]),
            "tax": float(order["tax"]),
            "shippingCost": float(order["shipping_cost"]),
            "total": float(order["total"]),
            "currency": order["currency"],
            "shippingAddress": {
                "fullName": order["shipping_full_name"],
                "addressLine1": order["shipping_address_line1"],
                "addressLine2": order["shipping_address_line2"],
                "city": order["shipping_city"],
                "state": order["shipping_state"],
                "postalCode": order["shipping_postal_code"],
                "country": order["shipping_country"],
                "phone": order["shipping_phone"],
            },
            "lineItems": [
                {
                    "lineItemId": str(i["line_item_id"]),
                    "productId": str(i["product_id"]),
                    "productName": i["product_name"],
                    "unitPrice": float(i["unit_price"]),
                    "quantity": i["quantity"],
                }
                for i in items
            ],
            "createdDate": order["created_date"].isoformat(),
            "updatedDate": order["updated_date"].isoformat(),
        }

    return app
