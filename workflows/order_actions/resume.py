"""The first work of a run resumed from the order's row: Stripe's word now on every
PaymentIntent of the order, applied as a webhook's would be.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from vult.domain.failures import Failure
from vult.domain.status import OrderStatus
from workflows import decisions, steps
from workflows import declared_activities as declared
from workflows.order_actions import cancellation, payment, refunds, row
from workflows.order_actions.context import OrderContext

S = OrderStatus


async def catch_up(ctx: OrderContext) -> None:
    """The first work of a resumed run, whose state came from the order's row: Stripe's
    word now on every PaymentIntent of the order, applied as a webhook's would be, with
    the amounts of each that took money. What was mid-way when the previous run ended
    carries on from there: a payment that went through meanwhile confirms; money that
    pays no order is refunded, once (the refunds' keys are the previous run's); a
    cancellation whose refund Stripe holds is recorded; a refund of ours that failed
    waits for ops, as it did. Safe to run again (after a park): it only reads and
    applies."""
    state = ctx.state
    resumed = state.resumes[-1]
    assert state.status is not None
    await row.annotate(ctx, resumed_at=resumed.at)
    for pi in list(state.payments.intent_ids):
        intent = await declared.retrieve_payment_intent(pi)
        if intent.status == "succeeded" or intent.amount_received > 0:
            facts = await refunds.read_charge(ctx, pi)
            decisions.adopt_our_refunds(state, pi, facts, steps.refund_key(ctx.order_id, pi))
            decisions.adopt_watched_refunds(state, pi, facts, f"order:{ctx.order_id}:")
            watched = decisions.watched_owed(state, pi) and not state.money.retry_asked
            if decisions.refund_owed(state, pi, facts) or watched:
                await row.annotate(ctx, stripe_payment_status="refund_failed")
                raise ApplicationError(
                    f"A refund of {pi} failed at Stripe before the order was resumed: the "
                    "money is still owed. Retry to refund again, or pay the customer back "
                    "another way",
                    type=Failure.REFUND_FAILED,
                    non_retryable=True,
                )
        state.payments.last_note = f"resumed: {await payment.apply(ctx, intent)}"
        current = decisions.is_current(state, pi)
        if intent.status == "requires_capture" and current and state.hold.authorized_at is None:
            # Authorized before the resume (its time is not on the row): the lapse is
            # counted from now; Stripe refuses a capture after the real one anyway.
            state.hold.authorized_at = workflow.now()
            state.hold.ends_at = intent.capture_before
    paying = state.payments.current
    if paying is not None and paying.payment_intent_id in state.money.charges:
        await refunds.learn(ctx, paying.payment_intent_id)  # the row's amounts, ops' notices
        if state.status == S.Confirmed and paying.payment_intent_id in state.money.refunds:
            # The previous run was cancelling: Stripe holds its refund, the row was not
            # written yet.
            await cancellation.cancel(
                ctx, "Cancelled by customer (completed when the order was resumed)"
            )
    state.money.retry_asked = False
    state.catching_up = False
