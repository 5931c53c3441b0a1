"""Shares that add up (vult/domain/fulfilment.py, issue 29): for random orders, returning the
shipped units one return at a time, in any order and any grouping, refunds exactly the
merchandise and tax of what shipped: never a cent more (the last return refused), never a
cent less. A property test over random orders, bounded in examples."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from vult.domain.fulfilment import OrderAmounts, OrderLine, returned_share, shipped_share
from vult.domain.money import round_money

prices = st.integers(min_value=1, max_value=50_000).map(lambda cents: Decimal(cents) / 100)
rates = st.sampled_from(["0.08", "0.0725", "0.19", "0.2", "0.0"]).map(Decimal)


@st.composite
def orders(draw: st.DrawFn) -> tuple[OrderAmounts, list[OrderLine], list[tuple[str, int]]]:
    """An order, every unit shipped, and the returns of all of them in a random sequence of
    random groupings (line id, quantity)."""
    count = draw(st.integers(min_value=1, max_value=4))
    lines = [
        OrderLine(f"l{i}", draw(prices), q := draw(st.integers(1, 5)), shipped=q)
        for i in range(count)
    ]
    sub = sum((li.unit_price * li.quantity for li in lines), Decimal(0))
    tax = round_money(sub * draw(rates))
    shipping = draw(st.sampled_from([Decimal("0.00"), Decimal("4.99")]))
    units = [li.line_item_id for li in lines for _ in range(li.quantity)]
    units = draw(st.permutations(units))
    returns: list[tuple[str, int]] = []
    for unit in units:  # runs of the same line may go back together
        if returns and returns[-1][0] == unit and draw(st.booleans()):
            returns[-1] = (unit, returns[-1][1] + 1)
        else:
            returns.append((unit, 1))
    return OrderAmounts(sub, tax, shipping, sub + tax + shipping), lines, returns


@settings(max_examples=300, deadline=None)
@given(orders())
def test_returns_one_at_a_time_add_up_to_what_shipped_less_shipping(
    case: tuple[OrderAmounts, list[OrderLine], list[tuple[str, int]]],
) -> None:
    order, lines, returns = case
    everything = {li.line_item_id: li.quantity for li in lines}
    assert shipped_share(order, lines, everything) == order.total
    refunded = Decimal("0.00")
    for line_id, quantity in returns:
        share = returned_share(order, lines, {line_id: quantity})
        assert share >= 0
        refunded += share
        lines = [
            li._replace(returned=li.returned + quantity) if li.line_item_id == line_id else li
            for li in lines
        ]
    assert refunded == order.total - order.shipping_cost


def test_three_returns_of_one_unit_each_are_the_whole_not_a_cent_more() -> None:
    """Issue 29's example: 3 x 10.19, tax 2.45, total 33.02."""
    sub = Decimal("30.57")
    order = OrderAmounts(sub, Decimal("2.45"), Decimal("0.00"), Decimal("33.02"))
    lines = [OrderLine("a", Decimal("10.19"), 3, shipped=3)]
    shares = []
    for returned in range(3):
        now = [lines[0]._replace(returned=returned)]
        shares.append(returned_share(order, now, {"a": 1}))
    assert shares == [Decimal("11.01"), Decimal("11.00"), Decimal("11.01")]
    assert sum(shares) == order.total
