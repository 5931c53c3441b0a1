"""The Stripe event types the service uses: the API routes them to orders, the workflow
acts on them, and the local stack registers them on the emulator."""

from __future__ import annotations

# About a PaymentIntent: the workflow reads the PaymentIntent back and acts on its status.
PAYMENT_INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
        # Capture at shipment: the card is authorized (`requires_capture`).
        "payment_intent.amount_capturable_updated",
    }
)
# A refund completing, or failing, at Stripe. `charge.refunded` carries the charge;
# the others carry the refund. Each names its PaymentIntent.
REFUND_EVENTS = frozenset(
    {
        "charge.refunded",
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }
)
# A dispute (chargeback) of a charge: opened, changed, its money withdrawn or reinstated,
# closed won or lost. Each carries the dispute, which names its PaymentIntent.
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
# Refund and dispute events: the workflow reads the charge's amounts back from Stripe.
MONEY_EVENTS = REFUND_EVENTS | DISPUTE_EVENTS
HANDLED = PAYMENT_INTENT_EVENTS | MONEY_EVENTS
# What a webhook endpoint must be subscribed to (the set-up job checks it at Stripe): the
# refund events Stripe sends on every account version, beside the rest. The newer
# refund.* events are used when they come, but are not required.
# `amount_capturable_updated` only with capture at shipment (reconciliation would find
# the authorization without it, later): `required_events`.
CAPTURE_EVENTS = frozenset({"payment_intent.amount_capturable_updated"})
REQUIRED = (
    (PAYMENT_INTENT_EVENTS - CAPTURE_EVENTS)
    | DISPUTE_EVENTS
    | {
        "charge.refunded",
        "charge.refund.updated",
    }
)


def required_events(capture: str) -> frozenset[str]:
    """What the webhook endpoint must be subscribed to under PAYMENT_CAPTURE `capture`."""
    return REQUIRED | CAPTURE_EVENTS if capture == "at_shipment" else REQUIRED
