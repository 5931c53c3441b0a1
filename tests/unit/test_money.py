"""Stripe amounts in the currency's minor unit (DESIGN.md: Money)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vult.domain.money import from_minor_units, round_money, to_minor_units


@pytest.mark.parametrize(
    "amount,currency,minor",
    [
        ("108.00", "USD", 10800),
        ("0.05", "usd", 5),
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
        ("19.99", "EUR", 1999),
    ],
)
def test_amounts_convert_to_the_currencys_minor_unit(
    amount: str, currency: str, minor: int
) -> None:
    assert to_minor_units(Decimal(amount), currency) == minor
    assert from_minor_units(minor, currency) == Decimal(amount)


def test_a_fraction_of_a_minor_unit_is_refused_not_truncated() -> None:
    with pytest.raises(ValueError):
        to_minor_units(Decimal("500.5"), "JPY")
    with pytest.raises(ValueError):
        to_minor_units(Decimal("1.005"), "USD")


def test_round_money_is_half_to_even() -> None:
    assert round_money(Decimal("2.675")) == Decimal("2.68")
    assert round_money(Decimal("2.665")) == Decimal("2.66")
