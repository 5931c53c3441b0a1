"""The catalogue, so the frontend can build a cart."""

from __future__ import annotations

from fastapi import APIRouter

from api import read_model
from api.deps import SessionDep
from api.schemas import ProductDto

router = APIRouter(prefix="/api/products", tags=["products"])


@router.get("", response_model=list[ProductDto])
async def list_products(session: SessionDep) -> list[ProductDto]:
    """List the products that can be ordered."""
    return await read_model.list_products(session)
