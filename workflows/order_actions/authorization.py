"""The authorization's clock (capture at shipment): a reminder before the hold lapses, then
the order cancelled with the hold released, or re-authorized off-session with the same card.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from vult.domain.failures import Failure
from vult.domain.status import OrderStatus
from workflows import attention, decisions
from workflows import declared_activities as declared
from workflows.order_actions import cancellation, payment, refunds, row
from workflows.order_actions.context import OrderContext

S = OrderStatus


def remind(ctx: OrderContext) -> None:
    ctx.state.hold.reminded = True
    lapses = decisions.authorization_lapses(ctx.state, ctx.timing)
    if lapses is None:
        return
    then = "cancelled" if ctx.timing.on_authorization_expiry == "cancel" else "re-authorized"
    attention.notify(
        ctx.state,
        ctx.index_for_search,
        "authorization",
        f"The card authorization lapses at {lapses:%Y-%m-%d %H:%M} UTC: ship the order "
        f"before then, or it is {then}",
    )


async def lapsed(ctx: OrderContext) -> None:
    """Not shipped before the authorization lapsed: cancelled with the authorization
    released, or re-authorized with the same card, as ON_AUTHORIZATION_EXPIRY says. A
    re-authorization the card refuses cancels (an order in Processing, which cannot
    be cancelled, is parked for ops instead)."""
    state = ctx.state
    if decisions.authorization_lapses(state, ctx.timing) is None:
        return
    assert state.payments.current is not None
    attention.clear_notice(state, ctx.index_for_search, "authorization")
    pi = state.payments.current.payment_intent_id
    facts = await refunds.read_charge(ctx, pi)
    if facts.amount_captured > 0:
        # Captured outside the service (by hand in the Dashboard) before the lapse:
        # that is the order's capture; nothing is renewed, nothing released.
        state.hold.captured = facts.amount_captured
        await row.annotate(
            ctx,
            amount_captured=row.major(ctx, facts.amount_captured),
            **row.payment_fields(ctx, pi, None),
        )
        return
    if ctx.timing.on_authorization_expiry == "reauthorize":
        try:
            await reauthorize(ctx)
            return
        except ApplicationError as err:
            if err.type != Failure.PAYMENT_REFUSED:
                raise
            reason = f"authorization expired; re-authorization refused: {err.message}"
    else:
        reason = "authorization expired before shipment"
    state.hold.over = True
    if state.status == S.Confirmed:
        await cancellation.cancel(ctx, reason)
        return
    # Processing cannot be cancelled (the seed's table): released, and a notice until
    # ops settle it (the shipment is refused: nothing can be captured).
    await payment.release(ctx, state.payments.current.payment_intent_id)
    attention.notify(
        state,
        ctx.index_for_search,
        "authorization",
        f"The order was not shipped before its card authorization lapsed ({reason}): "
        "nothing can be captured. Settle it with the customer, then resolve it",
    )


async def reauthorize(ctx: OrderContext) -> None:
    """A new authorization off-session with the lapsed one's card; it becomes the
    order's PaymentIntent, the old one is released."""
    state = ctx.state
    assert state.payments.current is not None and state.status is not None
    old = state.payments.current.payment_intent_id
    lapsed = await declared.retrieve_payment_intent(old)
    method = lapsed.payment_method
    if method is None:
        raise ApplicationError(
            "The lapsed authorization has no card to use again", type=Failure.PAYMENT_REFUSED
        )
    # The attempt counts as spent only once it is settled: a step of it tried again
    # after a park sends the same key, and Stripe answers with the same PaymentIntent
    # (never a second authorization on the customer's card).
    attempt = state.payments.attempt + 1
    intent = await payment.create_payment_intent(
        ctx, attempt, payment_method=method, customer=lapsed.customer
    )
    if intent.payment_intent_id not in state.payments.intent_ids:
        state.payments.intent_ids.append(intent.payment_intent_id)
    state.hold.renewal = intent.payment_intent_id
    found = await declared.retrieve_payment_intent(intent.payment_intent_id)
    state.hold.renewal = None
    if found.status != "requires_capture":
        state.payments.attempt = attempt
        raise ApplicationError(
            f"The card did not authorize again ({found.status})", type=Failure.PAYMENT_REFUSED
        )
    await payment.release(ctx, old)
    state.payments.attempt = attempt
    intent.client_secret = ""
    state.payments.current = intent
    state.hold.authorized_at = workflow.now()
    state.hold.ends_at = found.capture_before
    state.hold.reminded = False
    await row.annotate(
        ctx, payment_intent_id=intent.payment_intent_id, stripe_payment_status="authorized"
    )
