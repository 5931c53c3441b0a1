"""Stripe's amounts for a PaymentIntent (ChargeFacts), and what they mean for the order.

Whoever moved the money (this service, a person in the Dashboard, another system, the card
network through a dispute), these amounts are the truth: what is still held, what a cancel
refunds, whether the order may be fulfilled, and the `paymentStatus` the order shows.
"""

from __future__ import annotations

from vult.domain.contracts import ChargeFacts, RefundInfo

# A dispute Stripe still has open: the money is (or may be) pulled back, and no refund of
# the charge may be asked for (Stripe refuses one, for ever).
OPEN_DISPUTE = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)
# Refund statuses that moved no money (or moved it back).
DEAD_REFUND = frozenset({"failed", "canceled"})
# The metadata key a PaymentIntent of this service carries (its value: the deployment's
# STRIPE_OWNER), and the one on each refund it makes (its idempotency key).
OWNER_KEY = "vult_owner"
REFUND_KEY = "vult_refund_key"


def refused_while_disputed(pi: str) -> str:
    """Why no refund is asked for a disputed charge (Stripe refuses it for ever)."""
    return (
        f"The payment {pi} is disputed: nothing is refunded while the dispute is open "
        "(its outcome decides where the money goes)"
    )


def dispute_open(facts: ChargeFacts | None) -> bool:
    return facts is not None and facts.dispute is not None and facts.dispute.status in OPEN_DISPUTE


def disputed_amount(facts: ChargeFacts) -> int:
    """Money the dispute has taken, or may take: its amount while open or when lost."""
    dispute = facts.dispute
    if dispute is None or (dispute.status not in OPEN_DISPUTE and dispute.status != "lost"):
        return 0
    return dispute.amount


def held(facts: ChargeFacts) -> int:
    """What this service still holds of the payment, in minor units."""
    return max(0, facts.amount_captured - facts.amount_refunded - disputed_amount(facts))


def still_paid(facts: ChargeFacts) -> bool:
    """Money held, or an authorization a capture can still take."""
    return held(facts) > 0 or (facts.amount_captured <= 0 and facts.amount_capturable > 0)


def fully_refunded(facts: ChargeFacts | None) -> bool:
    return facts is not None and 0 < facts.amount_captured <= facts.amount_refunded


def our_refund(facts: ChargeFacts, key: str) -> RefundInfo | None:
    """The live refund this service made under `key`, if Stripe holds one."""
    for refund in facts.refunds:
        if refund.key == key and refund.status not in DEAD_REFUND:
            return refund
    return None


def payment_status(facts: ChargeFacts) -> str:
    """The order's `paymentStatus` from Stripe's amounts. Today's values keep their
    meaning (succeeded, refunded, refund_pending); partially_refunded, disputed and
    dispute_lost are added, and authorized (capture at shipment, before it). A dispute won
    leaves the payment as the refunds say."""
    if dispute_open(facts):
        return "disputed"
    if facts.dispute is not None and facts.dispute.status == "lost":
        return "dispute_lost"
    if facts.amount_captured <= 0 and facts.amount_capturable > 0:
        return "authorized"  # capture at shipment: nothing taken yet
    if facts.amount_refunded <= 0:
        return "succeeded"
    if facts.amount_refunded < facts.amount_captured:
        return "partially_refunded"
    live = [r for r in facts.refunds if r.status not in DEAD_REFUND]
    return "refund_pending" if any(r.status != "succeeded" for r in live) else "refunded"


def pending_refunds(facts: ChargeFacts) -> list[RefundInfo]:
    return [r for r in facts.refunds if r.status not in DEAD_REFUND and r.status != "succeeded"]
