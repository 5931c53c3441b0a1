"""The order aggregate's rules (spec 3.1-3.3): statuses, transitions, totals, order numbers.

Pure functions and value types only, so the workflow sandbox can pass this module through
and every caller (workflow, activities, API) applies the same rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from vult.money import round_money

DEFAULT_TAX_RATE = Decimal("0.08")
DEFAULT_SHIPPING_COST = Decimal("0")


class OrderStatus(StrEnum):
    """The spec's enum; stored and serialized by name (e.g. "PaymentProcessing")."""

    Pending = "Pending"
    PaymentProcessing = "PaymentProcessing"
    Confirmed = "Confirmed"
    Processing = "Processing"
    Shipped = "Shipped"
    Delivered = "Delivered"
    Cancelled = "Cancelled"
    Failed = "Failed"

    @property
    def ordinal(self) -> int:
        """The spec's numeric value (Pending = 0 ... Failed = 7)."""
        return _ORDINALS[self]


_ORDINALS = {status: i for i, status in enumerate(OrderStatus)}

S = OrderStatus
# Exactly the seed's CanTransitionTo table: nothing more, nothing less.
ALLOWED_TRANSITIONS: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    {
        (S.Pending, S.PaymentProcessing),
        (S.Pending, S.Cancelled),
        (S.PaymentProcessing, S.Confirmed),
        (S.PaymentProcessing, S.Failed),
        (S.PaymentProcessing, S.Cancelled),
        (S.Failed, S.PaymentProcessing),
        (S.Failed, S.Cancelled),
        (S.Confirmed, S.Processing),
        (S.Confirmed, S.Cancelled),
        (S.Processing, S.Shipped),
        (S.Shipped, S.Delivered),
    }
)

# Statuses from which the customer may ask to pay (spec 5.3).
PAYABLE = frozenset({S.Pending, S.Failed})


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return (current, new) in ALLOWED_TRANSITIONS


class _Priced(Protocol):
    @property
    def unit_price(self) -> Decimal: ...

    @property
    def quantity(self) -> int: ...


def line_subtotal(unit_price: Decimal, quantity: int) -> Decimal:
    """LineItem.SubTotal => UnitPrice * Quantity (computed, never stored)."""
    return unit_price * quantity


class Totals(tuple[Decimal, Decimal, Decimal, Decimal]):
    """(sub_total, tax, shipping_cost, total), as CalculateTotals sets them."""

    __slots__ = ()

    @property
    def sub_total(self) -> Decimal:
        return self[0]

    @property
    def tax(self) -> Decimal:
        return self[1]

    @property
    def shipping_cost(self) -> Decimal:
        return self[2]

    @property
    def total(self) -> Decimal:
        return self[3]


def calculate_totals(
    items: Iterable[_Priced],
    tax_rate: Decimal = DEFAULT_TAX_RATE,
    shipping_cost: Decimal = DEFAULT_SHIPPING_COST,
) -> Totals:
    """CalculateTotals: tax = Math.Round(subTotal * taxRate, 2), half to even."""
    sub_total = sum((line_subtotal(i.unit_price, i.quantity) for i in items), Decimal("0"))
    tax = round_money(sub_total * tax_rate)
    return Totals((sub_total, tax, shipping_cost, sub_total + tax + shipping_cost))


ORDER_NUMBER_PREFIX = "VLT"
ORDER_NUMBER_MIN = 100000
ORDER_NUMBER_MAX = 999999  # exclusive, as .NET's Random.Next(100000, 999999)


def is_order_number_of(number: str, moment: datetime) -> bool:
    """Whether `number` carries the date (UTC) of `moment`."""
    return number.startswith(f"{ORDER_NUMBER_PREFIX}-{moment.strftime('%Y%m%d')}-")


def draw_order_number(moment: datetime) -> str:
    """A new number for an order placed at `moment` (uniqueness is the database's to check)."""
    return format_order_number(moment, random.randrange(ORDER_NUMBER_MIN, ORDER_NUMBER_MAX))


def format_order_number(moment: datetime, serial: int) -> str:
    """VLT-yyyyMMdd-NNNNNN, the date in UTC."""
    if not ORDER_NUMBER_MIN <= serial < ORDER_NUMBER_MAX:
        raise ValueError(f"order number serial {serial} out of range")
    return f"{ORDER_NUMBER_PREFIX}-{moment.strftime('%Y%m%d')}-{serial}"
