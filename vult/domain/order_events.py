"""The events an order emits (docs/events.md): one list, each fact's stable id, and the
shape every receiver sees.

An order's workflow emits an event at the moment it records the fact (workflows/
order_actions/events.py). The event's id comes from the order and the fact alone, so a
replay, a retried step or a resumed run that records the same fact again names the same
event, and the outbox (activities/order_events.py) keeps it once.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Final


class OrderEventType(StrEnum):
    PLACED = "order.placed"
    PAID = "order.paid"  # captured at once (PAYMENT_CAPTURE=automatic)
    AUTHORIZED = "order.authorized"  # held, captured at shipment (PAYMENT_CAPTURE=shipment)
    PAYMENT_FAILED = "order.payment_failed"
    CANCELLED = "order.cancelled"
    REFUNDED = "order.refunded"
    SHIPPED = "order.shipped"
    DELIVERED = "order.delivered"
    RETURNED = "order.returned"
    DISPUTED = "order.disputed"
    DISPUTE_CLOSED = "order.dispute_closed"
    NEEDS_ATTENTION = "order.needs_attention"


# The events the customer gets an e-mail for (activities/mail_templates/<type>.*).
CUSTOMER_MAILS: Final = frozenset(
    {
        OrderEventType.PAID,
        OrderEventType.AUTHORIZED,
        OrderEventType.PAYMENT_FAILED,
        OrderEventType.CANCELLED,
        OrderEventType.REFUNDED,
        OrderEventType.SHIPPED,
        OrderEventType.RETURNED,
    }
)

# A namespace of our own for the events' name-based UUIDs.
_EVENTS = uuid.UUID("6f0d3c52-2b1f-5a43-9d8e-0f4a7c1b9e21")

# Where an e-mail goes, among an event's delivery targets (the others are endpoint names).
EMAIL_TARGET: Final = "email"


def event_id(order_id: uuid.UUID, kind: OrderEventType, fact: str) -> str:
    """The same id for the same fact of the same order, on every run of its workflow.

    `fact` names which one when an order can have several of a kind: a refund's Stripe id,
    a shipment's number, a payment attempt's PaymentIntent; empty when there is one."""
    return "evt_" + uuid.uuid5(_EVENTS, f"{order_id}/{kind.value}/{fact}").hex


def delivery_workflow_id(event: str, target: str, run: int = 1) -> str:
    """One EventDeliveryWorkflow per (event, target, run): run 1 is the outbox's, each
    later one a delivery ops asked for again."""
    return f"delivery-{event}-{target}" + ("" if run == 1 else f"-again-{run}")


def message_id(event: str, domain: str) -> str:
    """The e-mail's Message-ID: one per (order, fact), so a resent mail is the same mail."""
    return f"<{event}@{domain}>"
