"""Pricing a request from the catalogue: the one snapshot and the one quote of an order,
made by the API from a single read of the products and saved as is by the activity."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from vult.domain.contracts import LineSnapshot, PricedOrder, RequestedLineItem
from vult.domain.pricing import Pricing, quote


@dataclass(frozen=True)
class CatalogueProduct:
    """A product as the catalogue has it now."""

    name: str
    size: str | None
    image_url: str | None  # the first of its images
    price: Decimal


def snapshot(
    lines: list[RequestedLineItem], products: Mapping[uuid.UUID, CatalogueProduct]
) -> list[LineSnapshot]:
    """Each line with its product as it is now; a size asked for wins over the product's.
    Every product must be in `products`."""
    return [
        LineSnapshot(
            product_id=li.product_id,
            product_name=p.name,
            product_size=li.size if li.size is not None else p.size,
            product_image_url=p.image_url,
            unit_price=p.price,
            quantity=li.quantity,
        )
        for li in lines
        for p in (products[li.product_id],)
    ]


def price(
    lines: list[RequestedLineItem],
    products: Mapping[uuid.UUID, CatalogueProduct],
    pricing: Pricing,
) -> PricedOrder:
    """The order's lines and totals on the shop's terms."""
    snapped = snapshot(lines, products)
    sub_total, tax, shipping_cost, total = quote(snapped, pricing)
    return PricedOrder(
        lines=snapped,
        sub_total=sub_total,
        tax=tax,
        shipping_cost=shipping_cost,
        total=total,
        currency=pricing.currency,
    )
