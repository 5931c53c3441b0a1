"""Money: Decimal arithmetic with the seed's rounding, and Stripe's minor units."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")

# ISO 4217 currencies whose minor unit is not 1/100. Stripe lists the zero-decimal ones;
# three-decimal currencies are charged by Stripe in thousandths but must end in 0.
_ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


# The largest amount Stripe charges in one payment: eight digits of the minor unit
# (999,999.99 USD). A larger order could never be paid, so it is refused at placement.
MAX_CHARGE_MINOR_UNITS = 99_999_999


def is_chargeable(amount: Decimal, currency: str) -> bool:
    return 0 <= amount.scaleb(currency_exponent(currency)) <= MAX_CHARGE_MINOR_UNITS


def max_charge(currency: str) -> Decimal:
    return Decimal(MAX_CHARGE_MINOR_UNITS).scaleb(-currency_exponent(currency))


def round_money(amount: Decimal) -> Decimal:
    """Round to cents as .NET's Math.Round(x, 2) does: half to even ("banker's rounding")."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def currency_exponent(currency: str) -> int:
    code = currency.upper()
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


def to_minor_units(amount: Decimal, currency: str) -> int:
    """The integer Stripe expects: 10.80 USD -> 1080, 500 JPY -> 500.

    Refuses an amount that is not a whole number of minor units rather than silently
    truncating it, as the seed's `(long)(amount * 100)` did.
    """
    scaled = amount.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency.upper()} is not a whole number of minor units")
    return int(scaled)


def from_minor_units(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-currency_exponent(currency))
