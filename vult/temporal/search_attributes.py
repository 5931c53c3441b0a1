"""Custom search attributes, so ops can find an order in the Web UI:
`OrderNumber = "VLT-..."`, `CustomerEmail = "..."`, `OrderStatus = "PaymentProcessing"`,
`OrderTotal > 100`, `NeedsAttention = true`, `Disputed = true`, `Resumed = true`. The
dev stack, the tests and the compose stack register these."""

from __future__ import annotations

from decimal import Decimal

from temporalio.common import SearchAttributeKey

ORDER_NUMBER = SearchAttributeKey.for_keyword("OrderNumber")
CUSTOMER_EMAIL = SearchAttributeKey.for_keyword("CustomerEmail")
ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
ORDER_TOTAL = SearchAttributeKey.for_float("OrderTotal")
# Set while a step failed in a way no retry fixed (`NeedsAttention = true` in the Web UI).
NEEDS_ATTENTION = SearchAttributeKey.for_bool("NeedsAttention")
# Set while a dispute (chargeback) of the order's payment is open (`Disputed = true`).
DISPUTED = SearchAttributeKey.for_bool("Disputed")
# Set on a run of an order's workflow that was resumed from the order's row, its previous
# run having ended while the order could still change (`Resumed = true`).
RESUMED = SearchAttributeKey.for_bool("Resumed")

ALL = (ORDER_NUMBER, CUSTOMER_EMAIL, ORDER_STATUS, ORDER_TOTAL)

# Name -> the server's type name, as `temporal operator search-attribute create` takes it.
REGISTRATION = {
    ORDER_NUMBER.name: "Keyword",
    CUSTOMER_EMAIL.name: "Keyword",
    ORDER_STATUS.name: "Keyword",
    ORDER_TOTAL.name: "Double",
    NEEDS_ATTENTION.name: "Bool",
    DISPUTED.name: "Bool",
    RESUMED.name: "Bool",
}


def order_summary(number: str, customer_email: str, total: Decimal, currency: str) -> str:
    """The order's workflow in one line, its summary in the Web UI (the list and the
    order's page): number, customer, total. Where it stands now is in its current details."""
    return f"Order {number} · {customer_email} · {total} {currency}"
