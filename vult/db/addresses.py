"""An address and its columns: an order row holds the shipping and the billing address
flattened into `shipping_<field>` and `billing_<field>` columns. The one mapping, used by the
activity that writes the row and by the API that reads it."""

from __future__ import annotations

from typing import Any

from vult.domain.contracts import Address

FIELDS: tuple[str, ...] = tuple(Address.model_fields)
SHIPPING, BILLING = "shipping", "billing"


def columns(prefix: str, address: Address | None) -> dict[str, Any]:
    """The row's `<prefix>_<field>` values for `address`; all NULL for no address."""
    return {f"{prefix}_{f}": getattr(address, f) if address else None for f in FIELDS}


def fields(row: Any, prefix: str) -> dict[str, Any]:
    """The address held in a row's `<prefix>_<field>` columns, by field name."""
    return {f: getattr(row, f"{prefix}_{f}") for f in FIELDS}
