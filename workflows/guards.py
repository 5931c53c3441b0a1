"""What each command requires of the order, checked by the update's validator (before
anything is recorded) and again by its handler. Each raises the refusal the caller sees.
Which statuses take which command is the status table's (vult/domain/status.py); the rest
here is what the workflow knows beyond the status."""

from __future__ import annotations

from vult.domain import payments
from vult.domain.contracts import LineQuantity, OrderState, ReturnRequest
from vult.domain.status import REFUSALS, Command, accepts
from workflows.steps import refused


def require(state: OrderState, command: Command) -> None:
    """The order's status takes this command (the status table's row)."""
    if not accepts(state.status, command):
        raise refused(REFUSALS[command].format(status=state.status))


def payable(state: OrderState) -> None:
    if state.cancelling.pending is not None:
        raise refused("The order is being cancelled: it cannot be paid")
    require(state, Command.PAY)


def cancellable(state: OrderState) -> None:
    require(state, Command.CANCEL)


def keeps_payment(state: OrderState) -> None:
    """An order whose payment this service refunded, or that is being cancelled, is not
    fulfilled (the validators check this: it is the workflow's own knowledge)."""
    payment = state.payments.current
    if payment is not None and payment.payment_intent_id in state.money.refunds:
        raise refused("The order's payment was refunded: it cannot be fulfilled")
    if state.cancelling.pending is not None:
        raise refused("The order is being cancelled: it cannot be fulfilled")


def stripe_keeps_payment(state: OrderState) -> None:
    """Checked once the charge has been read back from Stripe (its events may be late or
    lost): a payment refunded in full by anyone, taken back by a lost dispute, or disputed
    is not fulfilled. Partly refunded, it may be."""
    keeps_payment(state)
    payment = state.payments.current
    facts = state.money.charges.get(payment.payment_intent_id) if payment is not None else None
    if payments.dispute_open(facts):
        raise refused(
            "The order's payment is disputed: it cannot be fulfilled while the dispute is open"
        )
    if facts is not None and facts.amount_captured > 0 and payments.held(facts) <= 0:
        why = "refunded in full" if payments.fully_refunded(facts) else "taken back by a dispute"
        raise refused(f"The order's payment was {why} at Stripe: it cannot be fulfilled")


_MOST_LINES = 100


def valid_lines(lines: list[LineQuantity] | None) -> None:
    """Named lines: each once, each a quantity of at least 1 (the order decides the most)."""
    if lines is None:
        return
    if not 0 < len(lines) <= _MOST_LINES:
        raise refused(f"lineItems needs 1 to {_MOST_LINES} lines when given")
    ids = [li.line_item_id for li in lines]
    if len(set(ids)) != len(ids):
        raise refused("lineItems names a line item more than once")
    if any(li.quantity < 1 for li in lines):
        raise refused("Each line item's quantity must be at least 1")


def no_shipment_waiting(state: OrderState) -> None:
    if state.fulfilment.pending_shipment is not None:
        raise refused(
            "A shipment is waiting for its payment to be captured: retry or resolve the order"
        )


def returnable(state: OrderState, request: ReturnRequest) -> None:
    require(state, Command.TAKE_RETURN)
    if not 0 < len(request.reason.strip()) <= 500:
        raise refused("A reason of 1 to 500 characters is required")
    if not 0 < len(request.key) <= 255:
        raise refused("An Idempotency-Key of 1 to 255 characters is required")
    if (request.line_items is None) == (request.amount is None):
        raise refused("A return names either lineItems or an amount")
    valid_lines(request.line_items)
    if request.amount is not None and not (
        request.amount > 0 and request.amount == round(request.amount, 2)
    ):
        raise refused("The amount must be positive, in cents")
