"""The order's statuses, the seed's transition table (spec 3.1), and the sets of statuses
that the rules name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType


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


class Command(StrEnum):
    """What a customer or ops ask of an order by status (the workflow's updates). `retry`
    and `resolve` are not here: they depend on the order needing attention, not on its
    status."""

    PAY = "pay"
    CANCEL = "cancel"
    START_PROCESSING = "start_processing"
    SHIP = "ship"
    DELIVER = "deliver"
    TAKE_RETURN = "take_return"


class Clock(StrEnum):
    """The deadlines a status starts (workflows/decisions.py `deadlines` sets each one's
    time). The others follow the order's state whatever its status: a cancellation asked
    again, a dispute's evidence reminder, a parked step's retry, money still in flight."""

    PAYMENT_WINDOW = "payment_window"  # unpaid when it ends: cancelled
    RECONCILE = "reconcile"  # no webhook for a while: ask Stripe
    AUTHORIZATION = "authorization"  # capture at shipment: the hold's reminder and lapse
    CANCELLED_GRACE = "cancelled_grace"  # the workflow closes once it has passed
    RETURN_WINDOW = "return_window"  # returns taken until then; then the workflow closes


@dataclass(frozen=True)
class Accepts:
    """One status's row: where it may move (the seed's CanTransitionTo), the commands it
    takes, the clocks it starts. Every Stripe event is taken in every status (Stripe's word
    is applied whatever the status: a success after a cancellation is refunded), so events
    are not a column."""

    moves_to: frozenset[OrderStatus] = frozenset()
    commands: frozenset[Command] = frozenset()
    clocks: frozenset[Clock] = frozenset()


C, K = Command, Clock
# What each status accepts: the one table the transitions, the commands' validators and
# guards (workflows/guards.py) and the status-driven timers (workflows/decisions.py) are
# derived from. A new status is a row here and the handler that moves an order into it
# (docs/architecture.md, "Adding a status"); tests/unit/test_status_table.py fails when
# the code and this table disagree.
STATUS_TABLE: Mapping[OrderStatus, Accepts] = MappingProxyType(
    {
        S.Pending: Accepts(
            moves_to=frozenset({S.PaymentProcessing, S.Cancelled}),
            commands=frozenset({C.PAY, C.CANCEL}),
            clocks=frozenset({K.PAYMENT_WINDOW}),
        ),
        S.PaymentProcessing: Accepts(
            moves_to=frozenset({S.Confirmed, S.Failed, S.Cancelled}),
            commands=frozenset({C.PAY, C.CANCEL}),  # pay: the current PaymentIntent again
            clocks=frozenset({K.PAYMENT_WINDOW, K.RECONCILE}),
        ),
        S.Failed: Accepts(
            moves_to=frozenset({S.PaymentProcessing, S.Cancelled}),
            commands=frozenset({C.PAY, C.CANCEL}),
            clocks=frozenset({K.PAYMENT_WINDOW}),
        ),
        S.Confirmed: Accepts(
            moves_to=frozenset({S.Processing, S.Cancelled}),
            commands=frozenset({C.START_PROCESSING, C.CANCEL}),
            clocks=frozenset({K.AUTHORIZATION}),
        ),
        S.Processing: Accepts(
            moves_to=frozenset({S.Shipped}),
            commands=frozenset({C.SHIP}),
            clocks=frozenset({K.AUTHORIZATION}),
        ),
        S.Shipped: Accepts(
            moves_to=frozenset({S.Delivered}),
            commands=frozenset({C.DELIVER, C.TAKE_RETURN}),
        ),
        S.Delivered: Accepts(
            commands=frozenset({C.TAKE_RETURN}),
            clocks=frozenset({K.RETURN_WINDOW}),
        ),
        S.Cancelled: Accepts(
            commands=frozenset({C.CANCEL}),  # asked again: answered as done, nothing more done
            clocks=frozenset({K.CANCELLED_GRACE}),
        ),
    }
)
# Before the order's row exists (the workflow is writing it): a payment or a cancellation
# asked for now waits for it.
WHILE_PLACING = frozenset({C.PAY, C.CANCEL})
# What a refused command says, with the status (the first two are the seed's messages).
REFUSALS: Mapping[Command, str] = MappingProxyType(
    {
        C.PAY: "Cannot process payment for order with status: {status}",
        C.CANCEL: "Cannot cancel order with status: {status}",
        C.START_PROCESSING: "Cannot start processing an order with status: {status}",
        C.SHIP: "Cannot ship an order with status: {status}",
        C.DELIVER: "Cannot deliver an order with status: {status}",
        C.TAKE_RETURN: "Cannot take a return of an order with status: {status}",
    }
)


def accepts(status: OrderStatus | None, command: Command) -> bool:
    if status is None:
        return command in WHILE_PLACING
    return command in STATUS_TABLE[status].commands


def starts(status: OrderStatus | None, clock: Clock) -> bool:
    return status is not None and clock in STATUS_TABLE[status].clocks


def _with(clock: Clock) -> frozenset[S]:
    return frozenset(s for s, row in STATUS_TABLE.items() if clock in row.clocks)


# The seed's CanTransitionTo table, as the rows say.
ALLOWED_TRANSITIONS: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    (s, t) for s, row in STATUS_TABLE.items() for t in row.moves_to
)
# Statuses a customer or ops may cancel from; refunds where paid.
CANCELLABLE = frozenset(s for s, row in STATUS_TABLE.items() if S.Cancelled in row.moves_to)
# Not paid yet: the payment window applies.
UNPAID = _with(K.PAYMENT_WINDOW)


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
