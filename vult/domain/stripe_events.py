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
    }
)
# A refund completing, or failing, at Stripe. `charge.refunded` carries the charge;
# the others carry the refund. Each names its PaymentIntent.
REFUND_EVENTS = frozenset(
    {"charge.refunded", "charge.refund.updated", "refund.updated", "refund.failed"}
)
HANDLED = PAYMENT_INTENT_EVENTS | REFUND_EVENTS
