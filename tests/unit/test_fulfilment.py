"""What a shipment or a return of some lines is worth (vult/domain/fulfilment.py): the
lines' merchandise, the order's tax in proportion rounded half to even, the whole shipping
with a shipment and none with a return; cent-exact, ties included."""

from __future__ import annotations

from decimal import Decimal

from vult.domain.contracts import OrderLineInfo, OrderLines
from vult.domain.fulfilment import (
    OrderAmounts,
    OrderLine,
    of,
    problems_with,
    returned_share,
    shipped_share,
)

D = Decimal
LINES = [OrderLine("a", D("10.00"), 1), OrderLine("b", D("10.00"), 1)]


def order(tax: str, shipping: str = "0.00") -> OrderAmounts:
    sub = D("20.00")
    return OrderAmounts(sub, D(tax), D(shipping), sub + D(tax) + D(shipping))


def test_everything_shipped_is_exactly_the_total() -> None:
    o = order("1.61", "4.99")
    assert shipped_share(o, LINES, {"a": 1, "b": 1}) == o.total


def test_half_the_merchandise_takes_half_the_tax_rounded_half_to_even_at_a_tie() -> None:
    # 0.25 / 2 = 0.125: the tie goes to the even cent, 0.12; 0.35 / 2 = 0.175 -> 0.18.
    assert shipped_share(order("0.25"), LINES, {"a": 1}) == D("10.12")
    assert shipped_share(order("0.35"), LINES, {"a": 1}) == D("10.18")
    assert returned_share(order("0.25"), LINES, {"b": 1}) == D("10.12")


def test_a_shipment_carries_the_shipping_and_a_return_none() -> None:
    o = order("1.60", "4.99")
    assert shipped_share(o, LINES, {"a": 1}) == D("10.00") + D("0.80") + D("4.99")
    assert returned_share(o, LINES, {"a": 1}) == D("10.80")


def test_returning_what_shipped_never_refunds_more_than_it_captured() -> None:
    for tax in ("0.01", "0.25", "0.35", "1.61", "3.33"):
        o = order(tax, "4.99")
        shipped = shipped_share(o, LINES, {"a": 1})
        assert returned_share(o, LINES, {"a": 1}) <= shipped <= o.total
        # Two halves shipped apart differ from the whole by at most the rounding of tax.
        halves = shipped + shipped_share(o, LINES, {"b": 1}) - o.shipping_cost
        assert abs(halves - o.total) <= D("0.01")


def test_what_cannot_be_shipped_or_returned_is_named_every_time() -> None:
    shipped = [OrderLine("a", D("10.00"), 2, shipped=2, returned=1), OrderLine("b", D("5"), 1)]
    assert problems_with(shipped, {"a": 3, "z": 1}, returning=False) == [
        "Line item a: a quantity of 1 to 2 can be shipped",
        "Line item z is not part of this order",
    ]
    assert problems_with(shipped, {"a": 2, "b": 1}, returning=True) == [
        "Line item a: a quantity of 1 to 1 can be returned",
        "Line item b: a quantity of 1 to 0 can be returned",
    ]
    assert problems_with(shipped, {}, returning=True) == ["At least one line item is required"]


def test_the_rows_lines_read_in_fulfilments_terms() -> None:
    row = OrderLines(
        sub_total=Decimal("20.00"),
        tax=Decimal("1.60"),
        shipping_cost=Decimal("4.99"),
        total=Decimal("26.59"),
        lines=[
            OrderLineInfo(
                line_item_id="a", unit_price=Decimal("5.00"), quantity=4, shipped=3, returned=1
            )
        ],
    )
    amounts, lines = of(row)
    assert amounts == OrderAmounts(
        Decimal("20.00"), Decimal("1.60"), Decimal("4.99"), Decimal("26.59")
    )
    assert lines == [OrderLine("a", Decimal("5.00"), 4, 3, 1)]
