"""The order's statuses, the seed's transition table (spec 3.1), and the sets of statuses
that the rules name."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class OrderStatus(StrEnum):
    """The spec's enum; stored and serialized by name (e.g. "PaymentProcessing")."""

    Pending = "Pending"
    PaymentProcessing = "PaymentProcessing"
    Confirmed = "Confirmed"
    Processing = "Processing"
    Shipped = "Shipped"
    Delivered = "Delivered"
    Cancelled = "Cancelled"
    Failed = "Failed"

    @property
    def ordinal(self) -> int:
        """The spec's numeric value (Pending = 0 ... Failed = 7)."""
        return _ORDINALS[self]


_ORDINALS = {status: i for i, status in enumerate(OrderStatus)}

S = OrderStatus
# Exactly the seed's CanTransitionTo table: nothing more, nothing less.
ALLOWED_TRANSITIONS: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    {
        (S.Pending, S.PaymentProcessing),
        (S.Pending, S.Cancelled),
        (S.PaymentProcessing, S.Confirmed),
        (S.PaymentProcessing, S.Failed),
        (S.PaymentProcessing, S.Cancelled),
        (S.Failed, S.PaymentProcessing),
        (S.Failed, S.Cancelled),
        (S.Confirmed, S.Processing),
        (S.Confirmed, S.Cancelled),
        (S.Processing, S.Shipped),
        (S.Shipped, S.Delivered),
    }
)

# Statuses from which the customer may ask for a new PaymentIntent (spec 5.3).
PAYABLE = frozenset({S.Pending, S.Failed})
# Statuses a customer or ops may cancel from (the seed's table); refunds where paid.
CANCELLABLE = frozenset({S.Pending, S.PaymentProcessing, S.Failed, S.Confirmed})
# Not paid yet: the payment window applies.
UNPAID = frozenset({S.Pending, S.PaymentProcessing, S.Failed})


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return (current, new) in ALLOWED_TRANSITIONS


# A Cancelled order's paymentStatus once none of its money can move any more: nothing was
# taken (no status, the PaymentIntent canceled or failed), all of it went back, or a lost
# dispute took it. Any other (a refund pending or failed, a dispute open, money held) may
# still move.
SETTLED_AFTER_CANCEL = frozenset({"canceled", "failed", "refunded", "dispute_lost"})
# Where the order's story ends: nothing more happens to it.
ENDED = frozenset({S.Delivered})


def returns_open(delivered: datetime | None, return_window: timedelta, now: datetime) -> bool:
    """A delivered order takes returns until its window closes."""
    return delivered is not None and delivered + return_window > now


def may_still_change(
    status: str,
    payment_status: str | None,
    resolution_note: str | None = None,
    returns_open: bool = False,
) -> bool:
    """Something can still happen to an order in this state of its row: it can be paid,
    fulfilled, cancelled, returned, or money of it can still move. Such an order needs a
    running workflow; one whose workflow is gone is resumed (vult/temporal/orphans.py). A
    Cancelled order ops resolved by hand is settled whatever its payment says; a Delivered
    one is done once its return window (`returns_open`) has closed."""
    if status in ENDED:
        return returns_open
    if status != S.Cancelled:
        return True
    if resolution_note is not None:
        return False
    return payment_status is not None and payment_status not in SETTLED_AFTER_CANCEL
