"""The one address mapping covers every column and every field on both sides."""

from __future__ import annotations

from types import SimpleNamespace

from vult.db import addresses
from vult.db.models import ORDERS
from vult.domain.contracts import Address
from vult.wire.schemas import AddressDto

ANN = Address(
    full_name="Ann Lee",
    address_line1="1 Main St",
    city="Springfield",
    state="IL",
    postal_code="62701",
    country="US",
    phone="555-0100",
)


# Columns that share the prefix but are not part of the address.
NOT_ADDRESS = {"shipping_cost", "shipping_carrier"}


def test_every_address_column_of_the_orders_table_is_mapped() -> None:
    table = {c.name for c in ORDERS.columns}
    for prefix in (addresses.SHIPPING, addresses.BILLING):
        held = {c for c in table if c.startswith(f"{prefix}_")} - NOT_ADDRESS
        assert held == set(addresses.columns(prefix, ANN)), prefix


def test_the_wire_address_has_the_same_fields() -> None:
    assert set(AddressDto.model_fields) == set(addresses.FIELDS)


def test_an_address_survives_the_row_and_back() -> None:
    row = SimpleNamespace(**addresses.columns(addresses.BILLING, ANN))
    assert Address(**addresses.fields(row, addresses.BILLING)) == ANN


def test_no_address_is_all_null() -> None:
    assert set(addresses.columns(addresses.BILLING, None).values()) == {None}
