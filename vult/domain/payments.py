"""Stripe's amounts for a PaymentIntent (ChargeFacts), and what they mean for the order.

Whoever moved the money (this service, a person in the Dashboard, another system, the card
network through a dispute), these amounts are the truth: what is still held, what a cancel
refunds, whether the order may be fulfilled, and the `paymentStatus` the order shows.
"""

from __future__ import annotations

from vult.domain.contracts import ChargeFacts, RefundInfo

# A chargeback Stripe still has open, its appeal included (the Dispute object's statuses at
# the pinned API version): the money is withdrawn, or may be, and the outcome decides where
# it goes. Stripe sets is_charge_refundable false: no refund may be asked for.
CHARGEBACK_OPEN = frozenset(
    {"needs_response", "under_review", "appeal_needs_response", "appeal_under_review"}
)
# An inquiry (a "warning", before any chargeback): nothing is withdrawn, and the charge may
# still be refunded while Stripe says is_charge_refundable.
INQUIRY_OPEN = frozenset({"warning_needs_response", "warning_under_review"})
OPEN_DISPUTE = CHARGEBACK_OPEN | INQUIRY_OPEN
# Refund statuses that moved no money (or moved it back).
DEAD_REFUND = frozenset({"failed", "canceled"})
# The metadata key a PaymentIntent of this service carries (its value: the deployment's
# STRIPE_OWNER), and the one on each refund it makes (its idempotency key).
OWNER_KEY = "vult_owner"
REFUND_KEY = "vult_refund_key"
# The idempotency key a PaymentIntent was made under (the order's attempt), so that one
# made under a key whose answer was lost can be found again.
ATTEMPT_KEY = "vult_attempt_key"


def refused_while_disputed(pi: str) -> str:
    """Why no refund is asked for a disputed charge Stripe will not refund."""
    return (
        f"The payment {pi} is disputed and Stripe no longer allows a refund of it: nothing is "
        "refunded while the dispute is open (its outcome decides where the money goes)"
    )


def dispute_open(facts: ChargeFacts | None) -> bool:
    """A dispute or an inquiry is open: ops are told, the order is not fulfilled."""
    return facts is not None and facts.dispute is not None and facts.dispute.status in OPEN_DISPUTE


def refund_blocked(facts: ChargeFacts | None) -> bool:
    """An open dispute whose charge Stripe will not refund (`is_charge_refundable` false: a
    chargeback; an inquiry's charge may still be refunded)."""
    return (
        dispute_open(facts)
        and facts is not None
        and facts.dispute is not None
        and not facts.dispute.is_charge_refundable
    )


def disputed_amount(facts: ChargeFacts) -> int:
    """Money a chargeback has taken, or may take: its amount while open (an appeal too) or
    when lost. An inquiry takes nothing."""
    dispute = facts.dispute
    if dispute is None or (dispute.status not in CHARGEBACK_OPEN and dispute.status != "lost"):
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


def again_key(key: str, tries: int) -> str:
    """The key of a refund step made again (ops' `retry`) for its `tries`-th time: a key of
    its own, since Stripe answers a key with its first refund (a failed one) for 24 hours."""
    return f"{key}:again-{tries}"


def refund_step(key: str) -> str:
    """The step a refund key belongs to, whichever try of it the key is (`again_key`)."""
    return key.split(":again-")[0]


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
