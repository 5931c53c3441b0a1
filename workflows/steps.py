"""The order workflow's activity calls that need more than their declaration
(workflows/declared_activities.py, which the workflows call directly otherwise): the
requests with their idempotency keys, and the unwrapping of failures into what the
workflow acts on."""

from __future__ import annotations

import uuid

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from vult.domain.contracts import (
    CancelPaymentIntent,
    CapturePayment,
    CreatedOrderRow,
    CreateOrderRow,
    CreatePaymentIntent,
    OrderTiming,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
    RefundInfo,
    RefundPayment,
    StatusChange,
)
from vult.domain.failures import Failure
from workflows import declared_activities as declared
from workflows import ops_view, policies

# A PaymentIntent mid-charge cannot be cancelled; ask again this often, this many times.
_IN_FLIGHT_RETRY = OrderTiming().in_flight_retry
_IN_FLIGHT_TRIES = 20


class OrderRefused(Exception):
    """The order cannot be placed as asked (an unknown product): the customer's to fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def application_cause(err: ActivityError | ApplicationError) -> ApplicationError | None:
    """The ApplicationError an activity raised. A local activity's failure can surface
    unwrapped, a regular activity's as the cause of an ActivityError: accept both."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause if isinstance(cause, ApplicationError) else None


def _payment_refused(err: ActivityError | ApplicationError) -> ApplicationError | None:
    """Stripe refused the payment step (a card declined, nothing capturable): that refusal,
    as the workflow raises it to its caller; None for any other failure."""
    cause = application_cause(err)
    if cause is None or cause.type != Failure.PAYMENT_REFUSED:
        return None
    return ApplicationError(cause.message, type=Failure.PAYMENT_REFUSED)


def refused(message: str) -> ApplicationError:
    """A command the order's status does not allow."""
    return ApplicationError(message, type=Failure.INVALID_TRANSITION, non_retryable=True)


async def create_order_row(req: CreateOrderRow) -> CreatedOrderRow:
    try:
        return await declared.create_order_row(req)
    except (ActivityError, ApplicationError) as err:
        cause = application_cause(err)
        if cause is None or cause.type != Failure.INVALID_ORDER:
            raise ApplicationError(f"The order could not be created: {err}") from err
        raise OrderRefused([str(m) for m in (cause.details[0] if cause.details else [])]) from err


async def write_status(change: StatusChange) -> None:
    try:
        await declared.change_order_status(change)
    except (ActivityError, ApplicationError) as err:
        cause = application_cause(err)
        if cause is not None and cause.type == Failure.STATUS_CONFLICT:
            # The row and the workflow disagree: something outside the workflow changed
            # it. Failing the workflow task (not the workflow) holds the order here,
            # visible in the Web UI, and retries once ops have put the row right.
            raise RuntimeError(f"Order row out of step with its workflow: {cause}") from err
        raise


async def create_payment_intent(req: CreatePaymentIntent, summary: str) -> PaymentIntentInfo:
    try:
        return await declared.create_payment_intent(req, summary=summary)
    except (ActivityError, ApplicationError) as err:
        if (refusal := _payment_refused(err)) is not None:
            raise refusal from err
        cause = application_cause(err)
        if cause is not None and cause.type == Failure.STRIPE_KEY_REFUSED:
            workflow.logger.error("Cannot take payments: %s", cause.message)
            ops_view.count("vult_stripe_key_refused_total", "Stripe refused the service's API key")
        raise ApplicationError(
            "The payment service is unavailable; please try again",
            type=Failure.PAYMENT_UNAVAILABLE,
        ) from err


async def ask_to_cancel(
    order_id: uuid.UUID, pi: str, ask: int, *, interactive: bool = False, purpose: str = "cancel"
) -> PaymentIntentSnapshot:
    """One ask to cancel at Stripe, the `ask`-th (from 0): each has its own key, since
    Stripe replays a key's first answer for 24 hours. A PaymentIntent mid-charge answers
    `processing`; the workflow asks again later, from its timer, holding nothing.
    `interactive`: a customer waits on it, so Stripe gets a minute, not ten. `purpose`
    names the key's kind: a customer's `cancel`, or the workflow's `release` of an
    authorization that pays nothing."""
    policy = policies.STRIPE_INTERACTIVE_CALL if interactive else policies.STRIPE_BACKGROUND
    suffix = f":{ask + 1}" if ask else ""
    return await declared.cancel_payment_intent(
        CancelPaymentIntent(
            payment_intent_id=pi, idempotency_key=f"order:{order_id}:{purpose}:{pi}{suffix}"
        ),
        config=policy,
    )


async def cancel_payment_intent(
    order_id: uuid.UUID, pi: str, *, interactive: bool = False
) -> PaymentIntentSnapshot:
    """Cancel at Stripe; a PaymentIntent mid-charge is asked again until it settles.
    `interactive`: a customer waits on it, so Stripe gets a minute, not hours."""
    for attempt in range(1 if interactive else _IN_FLIGHT_TRIES):
        # Each ask gets its own key: Stripe replays a key's first answer for 24 hours, so a
        # reused key would never see the PaymentIntent leave `processing`.
        intent = await ask_to_cancel(order_id, pi, attempt, interactive=interactive)
        if intent.status != "processing" or interactive:
            return intent
        await workflow.sleep(_IN_FLIGHT_RETRY)  # mid-charge: wait for it to settle
    raise ApplicationError(
        f"PaymentIntent {pi} stayed processing; try the cancellation again later",
        type=Failure.PAYMENT_UNAVAILABLE,
    )


def refund_key(order_id: uuid.UUID, pi: str, retry: int = 0) -> str:
    """`retry` counts refunds of this PaymentIntent that failed at Stripe: each try after
    one needs a key of its own, or Stripe would answer with the failed refund again."""
    suffix = f":{retry + 1}" if retry else ""
    return f"order:{order_id}:refund:{pi}{suffix}"


async def refund_payment(
    order_id: uuid.UUID,
    pi: str,
    *,
    retry: int = 0,
    amount: int | None = None,
    key: str | None = None,
) -> RefundInfo:
    """Refund `amount` (minor units; None: what is still held); the key (the order's
    refund key, or `key`: a return's, the unshipped lines') makes a retry, here or at
    Stripe, the same refund."""
    return await declared.refund_payment(
        RefundPayment(
            order_id=order_id,
            payment_intent_id=pi,
            idempotency_key=key or refund_key(order_id, pi, retry),
            amount=amount,
        )
    )


async def capture_payment(order_id: uuid.UUID, pi: str, amount: int) -> PaymentIntentSnapshot:
    """Capture at shipment; the key is the order's and the PaymentIntent's, so a retried
    capture is the same capture at Stripe."""
    try:
        return await declared.capture_payment(
            CapturePayment(
                payment_intent_id=pi,
                amount=amount,
                # The amount is part of the request: another amount (other lines shipped
                # after a refused capture) is another key.
                idempotency_key=f"order:{order_id}:capture:{pi}:{amount}",
            )
        )
    except ActivityError as err:
        if (refusal := _payment_refused(err)) is not None:
            raise refusal from err
        raise
