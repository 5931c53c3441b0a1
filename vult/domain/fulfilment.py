"""What part of an order's total a shipment or a return of some of its lines is worth.

The rule, cent-exact:

- merchandise: the lines' own subtotal (unit price x quantity, exact);
- tax: the order's tax in proportion to that merchandise (the tax charged at placement, not
  a rate applied again), rounded half to even to the cent as the seed rounds tax; a return
  takes the tax of all returned so far less that of what was returned before (cumulative
  rounding), so returns one line at a time add up to exactly the tax of the whole;
- shipping: a shipment carries the order's whole shipping cost (a parcel went out); a
  return carries none (the shop does not refund postage).

So shipping every line is worth exactly the order's total, and a shipment of part of it
plus the return of the rest never exceeds it. Capture at shipment takes the shipped
share; in automatic capture the rest of the total is refunded instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import NamedTuple

from vult.domain.contracts import OrderLines
from vult.domain.money import round_money
from vult.domain.pricing import line_subtotal


class OrderLine(NamedTuple):
    """A line of a placed order as fulfilment sees it."""

    line_item_id: str
    unit_price: Decimal
    quantity: int
    shipped: int = 0  # of `quantity`, once the order shipped
    returned: int = 0  # of `shipped`


class OrderAmounts(NamedTuple):
    sub_total: Decimal
    tax: Decimal
    shipping_cost: Decimal
    total: Decimal


def of(order: OrderLines) -> tuple[OrderAmounts, list[OrderLine]]:
    """The order's amounts and lines, as read from its row, in fulfilment's terms."""
    amounts = OrderAmounts(order.sub_total, order.tax, order.shipping_cost, order.total)
    lines = [
        OrderLine(li.line_item_id, li.unit_price, li.quantity, li.shipped, li.returned)
        for li in order.lines
    ]
    return amounts, lines


def _merchandise(lines: Iterable[OrderLine], taken: Mapping[str, int]) -> Decimal:
    return sum(
        (line_subtotal(li.unit_price, taken.get(li.line_item_id, 0)) for li in lines),
        Decimal("0"),
    )


def _tax_share(order: OrderAmounts, merchandise: Decimal) -> Decimal:
    if order.sub_total <= 0 or merchandise >= order.sub_total:
        return order.tax if merchandise >= order.sub_total else Decimal("0.00")
    return round_money(order.tax * merchandise / order.sub_total)


def shipped_share(
    order: OrderAmounts, lines: Iterable[OrderLine], shipped: Mapping[str, int]
) -> Decimal:
    """What a shipment of `shipped` (line id -> quantity) is worth."""
    merchandise = _merchandise(lines, shipped)
    if merchandise <= 0:
        return Decimal("0.00")
    return round_money(merchandise + _tax_share(order, merchandise) + order.shipping_cost)


def returned_share(
    order: OrderAmounts,
    lines: Iterable[OrderLine],
    returned: Mapping[str, int],
) -> Decimal:
    """What a return of `returned` (line id -> quantity) refunds: no shipping. Its tax is
    the tax of everything returned with it less that of what the lines had returned before,
    so any sequence of returns sums to the tax of what they returned together (3 x 10.19
    returned one at a time: 11.01 + 11.00 + 11.01, not 3 x 11.01)."""
    lines = list(lines)
    merchandise = _merchandise(lines, returned)
    before = _merchandise(lines, {li.line_item_id: li.returned for li in lines})
    tax = _tax_share(order, before + merchandise) - _tax_share(order, before)
    return round_money(merchandise + tax)


def problems_with(
    lines: Iterable[OrderLine], wanted: Mapping[str, int], *, returning: bool
) -> list[str]:
    """Why `wanted` (line id -> quantity) cannot be shipped (or returned), every reason."""
    by_id = {li.line_item_id: li for li in lines}
    found: list[str] = []
    if not wanted:
        found.append("At least one line item is required")
    for line_id, quantity in wanted.items():
        line = by_id.get(line_id)
        if line is None:
            found.append(f"Line item {line_id} is not part of this order")
            continue
        most = line.shipped - line.returned if returning else line.quantity
        verb = "returned" if returning else "shipped"
        if not 0 < quantity <= most:
            found.append(f"Line item {line_id}: a quantity of 1 to {most} can be {verb}")
    return found
