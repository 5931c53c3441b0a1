"""The catalogue, so the frontend can build a cart."""

from __future__ import annotations

from fastapi import APIRouter

from api import read_model
from api.deps import EngineDep
from vult.wire.schemas import ProductDto

router = APIRouter(prefix="/api/products", tags=["products"])


@router.get("", response_model=list[ProductDto])
async def list_products(engine: EngineDep) -> list[ProductDto]:
    """List the products that can be ordered."""
    async with engine.connect() as connection:
        return await read_model.list_products(connection)
