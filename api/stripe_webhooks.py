"""Verifying Stripe's signature, and reading which order an event is about."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import stripe

from vult.domain.contracts import PaymentEvent
from vult.domain.payments import OWNER_KEY
from vult.domain.stripe_events import DISPUTE_EVENTS, PAYMENT_INTENT_EVENTS, REFUND_EVENTS


class SignatureError(Exception):
    pass


class MalformedEvent(ValueError):
    pass


def verify(payload: bytes, signature_header: str, secret: str, tolerance: int) -> stripe.Event:
    """The official SDK checks the HMAC and that the timestamp is not too old; a timestamp
    too far in the future is refused here as well, which the SDK does not check."""
    if not secret:
        # An empty secret verifies against an empty key, which anyone can forge.
        raise SignatureError("Webhook secret is not configured")
    if not signature_header:
        raise SignatureError("Missing Stripe-Signature header")
    try:
        event: stripe.Event = stripe.Webhook.construct_event(
            payload, signature_header, secret, tolerance
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise SignatureError("Invalid webhook signature") from exc
    timestamps = [
        int(value)
        for key, _, value in (part.partition("=") for part in signature_header.split(","))
        if key.strip() == "t" and value.strip().isdigit()
    ]
    if not timestamps or timestamps[0] > time.time() + tolerance:
        raise SignatureError("Invalid webhook signature")
    body = event.to_dict()
    if not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
        raise MalformedEvent("A signed body that is not a Stripe event: no id or type")
    return event


@dataclass(frozen=True)
class OrderEvent:
    order_id: uuid.UUID | None  # from the object's metadata, when it carries one
    owner: str | None  # the owner marker in that metadata (None: none written)
    event: PaymentEvent


class NotForUs(Exception):
    """A verified event this service does not act on: acknowledged, counted by `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def payment_event(event: stripe.Event) -> OrderEvent:
    """The order-relevant part of an event about a PaymentIntent, its refunds or a
    dispute of its charge; NotForUs for an event of another kind."""
    data = event.to_dict().get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise NotForUs("no_object")
    kind = obj.get("object")
    if event.type in PAYMENT_INTENT_EVENTS and kind == "payment_intent":
        payment_intent_id = obj.get("id")
    elif event.type in REFUND_EVENTS and kind in ("charge", "refund"):
        payment_intent_id = obj.get("payment_intent")
    elif event.type in DISPUTE_EVENTS and kind == "dispute":
        payment_intent_id = obj.get("payment_intent")
    else:
        raise NotForUs("unhandled_type")
    if not isinstance(payment_intent_id, str) or not payment_intent_id:
        raise NotForUs("no_payment_intent")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    order_id: uuid.UUID | None
    try:
        order_id = uuid.UUID(str(metadata.get("order_id")))
    except ValueError:
        order_id = None
    owner = metadata.get(OWNER_KEY)
    return OrderEvent(
        order_id=order_id,
        owner=owner if isinstance(owner, str) else None,
        event=PaymentEvent(
            event_id=event.id, event_type=event.type, payment_intent_id=payment_intent_id
        ),
    )
