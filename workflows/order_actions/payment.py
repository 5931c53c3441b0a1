"""Paying: PaymentIntents created and closed, Stripe's word on a PaymentIntent applied to the
order (workflows/decisions.py decides), reconciliation when no webhook comes, the payment
window, an authorization that pays nothing released.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from vult.domain.contracts import (
    CreatePaymentIntent,
    PaymentEvent,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
)
from vult.domain.failures import Failure
from vult.domain.money import to_minor_units
from vult.domain.status import UNPAID, OrderStatus
from vult.domain.stripe_events import MONEY_EVENTS
from workflows import decisions, ops_view, steps
from workflows import declared_activities as declared
from workflows.decisions import Act
from workflows.order_actions import cancellation, refunds, row
from workflows.order_actions.context import OrderContext

S = OrderStatus


async def on_event(ctx: OrderContext, event: PaymentEvent) -> str:
    pi = event.payment_intent_id
    if pi not in ctx.state.payments.intent_ids:
        return f"{event.event_type} for {pi} ignored: not one of this order's PaymentIntents"
    if event.event_type in MONEY_EVENTS:
        return await refunds.learn(ctx, pi)
    # Act on what Stripe says now, not on the event alone: events arrive late, twice
    # and out of order, and the PaymentIntent's own status settles all three.
    return await apply(ctx, await declared.retrieve_payment_intent(pi))


async def reconcile(ctx: OrderContext) -> None:
    """No webhook for a while: ask Stripe, and apply its answer as the webhook would."""
    payment = ctx.state.payments.current
    if ctx.state.status != S.PaymentProcessing or payment is None:
        return
    note = await apply(ctx, await declared.retrieve_payment_intent(payment.payment_intent_id))
    ctx.state.payments.last_note = f"reconciled: {note}"
    if ctx.state.status == S.PaymentProcessing:
        ctx.state.payments.reconcile_attempts += 1
        ctx.state.payments.next_reconcile_at = workflow.now() + decisions.reconcile_delay(
            ctx.timing, ctx.state.payments.reconcile_attempts
        )


async def expire_payment_window(ctx: OrderContext) -> None:
    if ctx.state.status not in UNPAID:
        return
    if ctx.state.payments.current is not None:
        # Paid in time but not yet told? Then the order is confirmed, not cancelled.
        pi = ctx.state.payments.current.payment_intent_id
        intent = await declared.retrieve_payment_intent(pi)
        await apply(ctx, intent)
        if intent.status == "processing" and ctx.state.status in UNPAID:
            # Mid-charge (a bank debit, a slow card network): Stripe's outcome decides,
            # not the clock. Ask again later; a success confirms the order.
            ctx.state.payments.window_extended_until = workflow.now() + ctx.timing.reconcile_after
            ctx.state.payments.last_note = f"{pi} is processing: the window waits for it"
            return
    if ctx.state.status in UNPAID:
        await cancellation.cancel(ctx, "payment window expired")


async def apply(ctx: OrderContext, intent: PaymentIntentSnapshot) -> str:
    decision = decisions.on_payment_intent(ctx.state, str(ctx.order_id), intent)
    if decisions.is_current(ctx.state, intent.payment_intent_id):
        ctx.state.payments.last_charge = intent.latest_charge  # names a decline's event
    status = ctx.state.status
    pi = intent.payment_intent_id
    if decision.act == Act.CONFIRM:
        if status == S.Failed:
            # The customer retried the same PaymentIntent and it went through.
            await row.change(ctx, S.Failed, S.PaymentProcessing)
        await row.change(
            ctx, S.PaymentProcessing, S.Confirmed, stripe_payment_status=decision.stripe_status
        )
        if decision.stripe_status == "authorized":
            ctx.state.hold.authorized_at = workflow.now()
            ctx.state.hold.ends_at = intent.capture_before
    elif decision.act == Act.CANCEL:
        # An authorization that pays nothing (superseded, after a cancel, the wrong
        # amount): released at Stripe.
        released = await release(ctx, pi)
        money: dict[str, str | Decimal | None] = {"stripe_payment_status": released.status}
        if released.status == "succeeded":
            # Captured meanwhile (by hand, in the Dashboard): it pays nothing, so it is
            # refunded, watched like every refund of ours.
            money = row.payment_fields(ctx, pi, await refunds.refund_held(ctx, pi))
        if decision.also_fail:
            await row.change(
                ctx,
                S.PaymentProcessing,
                S.Failed,
                payment_error_message=decision.error_message,
                **money,
            )
    elif decision.act == Act.FAIL:
        await row.change(
            ctx,
            S.PaymentProcessing,
            S.Failed,
            stripe_payment_status=decision.stripe_status,
            payment_error_message=decision.error_message,
        )
    elif decision.act == Act.RECORD and status is not None:
        await row.annotate(ctx, stripe_payment_status=decision.stripe_status)
    elif decision.act == Act.REFUND:
        refund = await refunds.refund_held(ctx, pi)
        if decision.also_fail:
            await row.change(
                ctx,
                S.PaymentProcessing,
                S.Failed,
                stripe_payment_status="refunded",
                payment_error_message=decision.error_message,
            )
        elif decisions.is_current(ctx.state, pi) and status is not None:
            await row.annotate(
                ctx,
                stripe_refund_id=refund.refund_id if refund else None,
                **row.payment_fields(ctx, pi, refund),
            )
        refund_id = refund.refund_id if refund else "nothing held"
        workflow.logger.warning("Refunded %s (%s): %s", pi, refund_id, decision.note)
    return decision.note


async def release(ctx: OrderContext, pi: str) -> PaymentIntentSnapshot:
    """Release an authorization that pays nothing, under a key of its own."""
    ask = ctx.state.payments.release_asks
    ctx.state.payments.release_asks += 1
    return await steps.ask_to_cancel(ctx.order_id, pi, ask, purpose="release")


async def close_previous_attempt(ctx: OrderContext) -> None:
    """Cancel the last PaymentIntent at Stripe before a new attempt; if it was paid
    meanwhile, the order is confirmed by it instead."""
    payment = ctx.state.payments.current
    if payment is None:
        return
    pi = payment.payment_intent_id
    intent = await steps.cancel_payment_intent(ctx.order_id, pi, interactive=True)
    if intent.status == "processing":
        raise ApplicationError(
            "The last payment is still being processed; wait for its outcome",
            type=Failure.PAYMENT_UNAVAILABLE,
        )
    if intent.status == "succeeded":
        ctx.state.payments.last_note = await apply(ctx, intent)


async def create_payment_intent(
    ctx: OrderContext, attempt: int, payment_method: str | None = None, customer: str | None = None
) -> PaymentIntentInfo:
    state, order_id = ctx.state, ctx.order_id
    assert state.total is not None and state.currency is not None
    assert state.order_number is not None
    request = CreatePaymentIntent(
        order_id=order_id,
        order_number=state.order_number,
        amount=to_minor_units(state.total, state.currency),
        currency=state.currency,
        # The same attempt always sends the same key, so a retry after a lost
        # response cannot create a second PaymentIntent at Stripe.
        idempotency_key=f"order:{order_id}:payment-intent:{attempt}",
        capture_method="manual" if ctx.capture == "at_shipment" or payment_method else "automatic",
        # Capture at shipment that re-authorizes a lapsed hold: the first payment keeps
        # the card for that authorization, which the customer is not there to give.
        save_card=ctx.capture == "at_shipment"
        and ctx.timing.on_authorization_expiry == "reauthorize"
        and payment_method is None,
        payment_method=payment_method,
        customer=customer,
    )
    summary = f"Create a PaymentIntent for {ops_view.money(state)} (attempt {attempt})"
    return await steps.create_payment_intent(request, summary)
