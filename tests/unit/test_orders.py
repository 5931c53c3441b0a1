"""OrderTests (spec 8.1): CalculateTotals, CanTransitionTo, order numbers."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from vult.domain.order_numbers import draw_order_number, format_order_number, is_order_number_of
from vult.domain.pricing import calculate_totals, line_subtotal
from vult.domain.status import ALLOWED_TRANSITIONS, OrderStatus, can_transition

S = OrderStatus


@dataclass
class Item:
    unit_price: Decimal
    quantity: int


def test_statuses_are_the_specs_eight_in_order() -> None:
    assert [s.value for s in S] == [
        "Pending",
        "PaymentProcessing",
        "Confirmed",
        "Processing",
        "Shipped",
        "Delivered",
        "Cancelled",
        "Failed",
    ]
    assert [s.ordinal for s in S] == list(range(8))


SEED_TABLE = {
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


@pytest.mark.parametrize("current,new", list(itertools.product(S, S)))
def test_can_transition_matches_the_seed_table_for_every_pair(
    current: OrderStatus, new: OrderStatus
) -> None:
    assert can_transition(current, new) == ((current, new) in SEED_TABLE)


def test_transition_table_has_exactly_eleven_edges() -> None:
    assert ALLOWED_TRANSITIONS == SEED_TABLE


def test_totals_add_line_subtotals_tax_and_shipping() -> None:
    totals = calculate_totals(
        [Item(Decimal("129.99"), 2), Item(Decimal("12.35"), 1)],
        shipping_cost=Decimal("5.00"),
    )
    assert totals.sub_total == Decimal("272.33")
    assert totals.tax == Decimal("21.79")  # 21.7864
    assert totals.shipping_cost == Decimal("5.00")
    assert totals.total == Decimal("299.12")


def test_tax_rounds_half_to_even_like_dotnet_math_round() -> None:
    # 10.00 * 0.0625 = 0.625: half-up would give 0.63, .NET's Math.Round gives 0.62.
    assert calculate_totals([Item(Decimal("10.00"), 1)], Decimal("0.0625")).tax == Decimal("0.62")
    # 10.40 * 0.0625 = 0.65 exactly; 10.80 * 0.0625 = 0.675 -> 0.68 (8 is even).
    assert calculate_totals([Item(Decimal("10.80"), 1)], Decimal("0.0625")).tax == Decimal("0.68")


def test_default_tax_rate_is_eight_percent_and_shipping_zero() -> None:
    totals = calculate_totals([Item(Decimal("100.00"), 1)])
    assert (totals.tax, totals.shipping_cost, totals.total) == (
        Decimal("8.00"),
        Decimal("0"),
        Decimal("108.00"),
    )


def test_totals_are_decimal_never_float() -> None:
    totals = calculate_totals([Item(Decimal("0.10"), 3)])
    assert all(isinstance(v, Decimal) for v in totals)
    assert totals.sub_total == Decimal("0.30")  # 0.1 * 3 in float is 0.30000000000000004


def test_line_subtotal_is_unit_price_times_quantity() -> None:
    assert line_subtotal(Decimal("0.05"), 7) == Decimal("0.35")


def test_order_number_is_vlt_date_and_six_digits() -> None:
    number = format_order_number(datetime(2026, 1, 2, 23, 59, tzinfo=UTC), 123456)
    assert number == "VLT-20260102-123456"
    assert re.fullmatch(r"VLT-\d{8}-\d{6}", number)


def test_a_drawn_order_number_carries_its_date_and_a_serial_in_range() -> None:
    moment = datetime(2026, 1, 2, 23, 59, tzinfo=UTC)
    numbers = {draw_order_number(moment) for _ in range(200)}
    assert all(re.fullmatch(r"VLT-20260102-[1-9]\d{5}", n) for n in numbers)
    assert len(numbers) > 150  # random, not one number
    assert all(is_order_number_of(n, moment) for n in numbers)
    assert not is_order_number_of(next(iter(numbers)), datetime(2026, 1, 3, tzinfo=UTC))


@pytest.mark.parametrize("serial", [99999, 999999, 1000000])
def test_order_number_refuses_serials_outside_the_seeds_range(serial: int) -> None:
    with pytest.raises(ValueError):
        format_order_number(datetime(2026, 1, 2, tzinfo=UTC), serial)
