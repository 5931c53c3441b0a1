"""Totals (spec 3.2) and the shop's terms. The API quotes a new order once
(vult/domain/snapshot.py) and the activity saves that quote."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple, Protocol

from vult.domain.money import is_chargeable, max_charge, round_money

DEFAULT_TAX_RATE = Decimal("0.08")
DEFAULT_SHIPPING_COST = Decimal("0")
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class Pricing:
    """The shop's terms, from settings."""

    tax_rate: Decimal = DEFAULT_TAX_RATE
    shipping_cost: Decimal = DEFAULT_SHIPPING_COST
    currency: str = DEFAULT_CURRENCY


class Priced(Protocol):
    @property
    def unit_price(self) -> Decimal: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True)
class QuotedLine:
    unit_price: Decimal
    quantity: int


class Totals(NamedTuple):
    """What CalculateTotals sets."""

    sub_total: Decimal
    tax: Decimal
    shipping_cost: Decimal
    total: Decimal


def line_subtotal(unit_price: Decimal, quantity: int) -> Decimal:
    """LineItem.SubTotal => UnitPrice * Quantity (computed, never stored)."""
    return unit_price * quantity


def calculate_totals(
    items: Iterable[Priced],
    tax_rate: Decimal = DEFAULT_TAX_RATE,
    shipping_cost: Decimal = DEFAULT_SHIPPING_COST,
) -> Totals:
    """CalculateTotals: tax = Math.Round(subTotal * taxRate, 2), half to even."""
    sub_total = sum((line_subtotal(i.unit_price, i.quantity) for i in items), Decimal("0"))
    tax = round_money(sub_total * tax_rate)
    return Totals(sub_total, tax, shipping_cost, sub_total + tax + shipping_cost)


def quote(items: Iterable[Priced], pricing: Pricing) -> Totals:
    """An order's totals on the shop's terms."""
    return calculate_totals(items, pricing.tax_rate, pricing.shipping_cost)


def unchargeable(totals: Totals, pricing: Pricing) -> str | None:
    """Why no payment could take this total, or None when one can."""
    if is_chargeable(totals.total, pricing.currency):
        return None
    return (
        f"The order total {totals.total} {pricing.currency} is more than one payment can take "
        f"({max_charge(pricing.currency)} {pricing.currency})"
    )
