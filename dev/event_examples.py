"""The example of each order event in docs/event-examples.md, made by the code every
receiver's body comes from (vult/wire/events.py) for one sample order, so the reference
cannot drift from what is sent. `python3 tasks.py docs` writes it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from vult.domain.contracts import EmittedEvent
from vult.domain.order_events import CUSTOMER_MAILS, OrderEventType, event_id
from vult.wire.events import event_body
from vult.wire.schemas import AddressDto, LineItemDto, OrderDto

E = OrderEventType
_ORDER = uuid.UUID("3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b")
_AT = datetime(2026, 12, 7, 15, 4, 5, 123000, tzinfo=UTC)
_LINES = [uuid.uuid5(_ORDER, "0"), uuid.uuid5(_ORDER, "1")]

# What only each kind says: the keys workflows/order_actions/events.py writes.
_DETAIL: dict[OrderEventType, tuple[str, dict[str, object]]] = {
    E.PLACED: ("", {}),
    E.PAID: ("", {}),
    E.AUTHORIZED: ("", {}),
    E.PAYMENT_FAILED: ("pi_3Q/ch_3Q", {"message": "Your card was declined."}),
    E.CANCELLED: ("", {"reason": "Customer changed their mind"}),
    E.REFUNDED: (
        "re_3Q",
        {
            "refundId": "re_3Q",
            "amount": "97.20",
            "currency": "USD",
            "whole": True,
            "purpose": "cancellation",
        },
    ),
    E.SHIPPED: (
        "",
        {
            "lines": [{"lineItemId": str(_LINES[0]), "quantity": 1}],
            "partial": True,
            "carrier": "UPS",
            "trackingNumber": "1Z999AA10123456784",
        },
    ),
    E.DELIVERED: ("", {}),
    E.RETURNED: (
        "rma-1",
        {
            "returnKey": "rma-1",
            "reason": "Too small",
            "lines": [{"lineItemId": str(_LINES[0]), "quantity": 1}],
            "amount": "48.60",
            "currency": "USD",
        },
    ),
    E.DISPUTED: (
        "dp_1Q",
        {"disputeId": "dp_1Q", "status": "needs_response", "amount": "97.20", "currency": "USD"},
    ),
    E.DISPUTE_CLOSED: (
        "dp_1Q",
        {"disputeId": "dp_1Q", "status": "won", "amount": "97.20", "currency": "USD"},
    ),
    E.NEEDS_ATTENTION: (
        "2026-12-07T15:04:05.123000+00:00",
        {"reason": "refunding pi_3Q: the refund failed at Stripe (Retry or resolve)"},
    ),
}

_STATUS = {
    E.PLACED: "Pending",
    E.PAYMENT_FAILED: "Failed",
    E.CANCELLED: "Cancelled",
    E.REFUNDED: "Cancelled",
    E.SHIPPED: "Shipped",
    E.DELIVERED: "Delivered",
    E.RETURNED: "Delivered",
}


def sample_order(kind: OrderEventType) -> OrderDto:
    address = AddressDto(
        full_name="Ann Lee",
        address_line1="1 Main St",
        city="Springfield",
        state="IL",
        postal_code="62701",
        country="US",
    )
    lines = [
        LineItemDto(
            line_item_id=_LINES[i],
            product_id=uuid.uuid5(uuid.NAMESPACE_URL, name),
            product_name=name,
            product_size=size,
            product_image_url=None,
            unit_price=price,
            quantity=1,
            sub_total=price,
            quantity_shipped=(1 if i == 0 else 0) if kind == E.SHIPPED else None,
        )
        for i, (name, size, price) in enumerate(
            [("Trail Runner", "42", Decimal("45.00")), ("Rain Jacket", "M", Decimal("45.00"))]
        )
    ]
    return OrderDto(
        order_id=_ORDER,
        order_number="VLT-20261207-004211",
        customer_email="ann@example.com",
        status=_STATUS.get(kind, "Confirmed"),
        sub_total=Decimal("90.00"),
        tax=Decimal("7.20"),
        shipping_cost=Decimal("0.00"),
        total=Decimal("97.20"),
        currency="USD",
        shipping_address=address,
        billing_address=None,
        line_items=lines,
        created_date=_AT - timedelta(minutes=3),
        updated_date=_AT,
    )


def example(kind: OrderEventType) -> dict[str, object]:
    fact, detail = _DETAIL[kind]
    event = EmittedEvent.model_validate(
        {"event_id": event_id(_ORDER, kind, fact), "type": kind.value, "at": _AT, "detail": detail}
    )
    return event_body(event, sample_order(kind))


_HEADER = """\
# Order events: an example of each

<!-- Made by `python3 tasks.py docs` (dev/event_examples.py) from the code that builds
every receiver's body (vult/wire/events.py): do not edit by hand. -->

What a webhook receiver gets for each event of one sample order (docs/events.md says when
each is sent and what its `detail` means). `data` is the order as `GET /api/orders/{id}`
serves it at the moment the fact was recorded. The first example shows `data` in full; the
others shorten it to the fields that changed.
"""


def render_examples() -> str:
    parts = [_HEADER]
    for i, kind in enumerate(OrderEventType):
        body = example(kind)
        if i:
            data = body["data"]
            assert isinstance(data, dict)
            body["data"] = {k: data[k] for k in ("orderId", "status", "total", "currency")} | {
                "…": "as order.placed's"
            }
        mail = " The customer gets an e-mail." if kind in CUSTOMER_MAILS else ""
        parts.append(f"\n## `{kind.value}`\n\n{_WHEN[kind]}{mail}\n")
        parts.append("\n```json\n" + json.dumps(body, indent=2, ensure_ascii=False) + "\n```\n")
    return "".join(parts)


_WHEN = {
    E.PLACED: "The order is stored (Pending).",
    E.PAID: "The payment succeeded and was captured at once: the order is Confirmed.",
    E.AUTHORIZED: (
        "The card is authorized (PAYMENT_CAPTURE=at_shipment): the order is Confirmed and the "
        "money is taken when it ships."
    ),
    E.PAYMENT_FAILED: "A payment try was declined or failed (one event per failed charge).",
    E.CANCELLED: "The order is Cancelled (`detail.reason`); a refund, if any, follows.",
    E.REFUNDED: (
        "A refund went through at Stripe, ours or anyone's (the Dashboard): one per refund. "
        "`whole` says whether nothing of the payment is held any more; `purpose` is "
        "cancellation, shipment (the share of lines not shipped), return, or other."
    ),
    E.SHIPPED: (
        "The order shipped: every line, or (`partial`) the lines in `detail.lines`; the rest "
        "never ships and its share is refunded (told as order.refunded)."
    ),
    E.DELIVERED: "The order is Delivered; the return window runs from now.",
    E.RETURNED: "Ops took a return of these lines (or of an amount); its refund follows.",
    E.DISPUTED: "The customer's bank opened a dispute of the payment.",
    E.DISPUTE_CLOSED: "The dispute closed: won or lost (`detail.status`).",
    E.NEEDS_ATTENTION: (
        "A step no retry fixed parked the order for ops (`detail.reason`); one per parking."
    ),
}
