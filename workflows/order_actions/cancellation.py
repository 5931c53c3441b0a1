"""Cancelling an order: the PaymentIntent cancelled (or its authorization released) at
Stripe, any payment refunded, the row moved to Cancelled. Mid-charge, the cancellation is
recorded and asked again from a timer.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from vult.domain.contracts import (
    RefundInfo,
)
from vult.domain.failures import Failure
from vult.domain.status import CANCELLABLE, OrderStatus
from workflows import attention, decisions, steps
from workflows.order_actions import refunds, row
from workflows.order_actions.context import OrderContext

S = OrderStatus


async def cancel(ctx: OrderContext, reason: str, *, interactive: bool = False) -> None:
    status = ctx.state.status
    assert status in CANCELLABLE
    payment = ctx.state.payments.current
    refund: RefundInfo | None = None
    money: dict[str, str | Decimal | None]
    if payment is not None and status in (S.PaymentProcessing, S.Failed):
        pi = payment.payment_intent_id
        intent = await steps.ask_to_cancel(
            ctx.order_id, pi, ctx.state.cancelling.asks, interactive=interactive
        )
        ctx.state.cancelling.asks += 1
        if intent.status == "processing":
            # Mid-charge: Stripe cannot cancel it yet. Recorded; the workflow asks
            # again from its timer, and a success meanwhile confirms, then refunds.
            delay = decisions.backoff(
                ctx.timing.in_flight_retry,
                ctx.timing.reconcile_max_interval,
                ctx.state.cancelling.asks - 1,
            )
            ctx.state.cancelling.next_ask_at = workflow.now() + delay
            if ctx.state.cancelling.asks == 1:
                # On the row: a run resumed from it completes the cancellation.
                await row.annotate(ctx, pending_cancel_reason=reason)
            raise ApplicationError(
                "The cancellation is recorded: the payment is being processed, and "
                "the order is cancelled (any payment refunded) once it settles",
                type=Failure.CANCEL_RECORDED,
                non_retryable=True,
            )
        ctx.state.cancelling.next_ask_at = None
        if intent.status == "succeeded":
            refund = await refunds.refund_held(ctx, pi)
            money = row.payment_fields(ctx, pi, refund)
        else:
            money = {"stripe_payment_status": intent.status}  # Stripe's word, read back
    elif payment is not None and status == S.Confirmed and decisions.authorized(ctx.state):
        # Capture at shipment, not captured yet: the authorization is released, nothing
        # was taken, nothing is refunded.
        # An ask of its own: an earlier one (a cancel recorded mid-charge) saved its
        # answer (`processing`) under its key, and Stripe would answer that again.
        ask = ctx.state.cancelling.asks
        ctx.state.cancelling.asks += 1
        intent = await steps.ask_to_cancel(
            ctx.order_id, payment.payment_intent_id, ask, interactive=interactive
        )
        if intent.status == "succeeded":  # captured meanwhile (by hand, in the Dashboard)
            refund = await refunds.refund_held(ctx, payment.payment_intent_id)
            money = row.payment_fields(ctx, payment.payment_intent_id, refund)
        else:
            money = {"stripe_payment_status": intent.status}
    elif payment is not None and status == S.Confirmed:
        refund = await refunds.refund_held(ctx, payment.payment_intent_id)
        money = row.payment_fields(ctx, payment.payment_intent_id, refund)
    else:
        money = {}
    await row.change(
        ctx,
        status,
        S.Cancelled,
        cancellation_reason=reason,
        stripe_refund_id=refund.refund_id if refund else None,
        **money,
    )
    attention.clear_notice(ctx.state, ctx.index_for_search, "unpaid")
    attention.clear_notice(ctx.state, ctx.index_for_search, "authorization")
    ctx.state.cancelling.at = workflow.now()
    ctx.state.cancelling.reason = reason
