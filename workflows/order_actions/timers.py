"""What each of the order's timers does when it fires (workflows/decisions.py says when)."""

from __future__ import annotations

from temporalio import workflow

from vult.domain.status import OrderStatus
from workflows import decisions
from workflows.decisions import Timer
from workflows.order_actions import authorization, payment, refunds, resume
from workflows.order_actions.context import OrderContext

S = OrderStatus


async def on_timer(ctx: OrderContext, timer: Timer) -> None:
    if timer == Timer.RECONCILE:
        await payment.reconcile(ctx)
    elif timer == Timer.PAYMENT_WINDOW:
        await payment.expire_payment_window(ctx)
    elif timer == Timer.DISPUTE_EVIDENCE:
        await refunds.remind_of_evidence(ctx)
    elif timer == Timer.CATCH_UP:
        await resume.catch_up(ctx)
    elif timer == Timer.AUTHORIZATION_REMINDER:
        authorization.remind(ctx)
    elif timer == Timer.AUTHORIZATION_EXPIRED:
        await authorization.lapsed(ctx)
    elif timer == Timer.MONEY_IN_FLIGHT:
        # Cancelled, past its grace period, with a refund pending or a dispute open:
        # ask Stripe now and then, until the money has settled.
        ctx.state.money.checked_at = workflow.now()
        for pi in decisions.money_in_flight(ctx.state):
            await refunds.learn(ctx, pi)
    # GRACE_OVER needs nothing: the main loop sees the order is finished.
