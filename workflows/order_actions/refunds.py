"""Refunds and Stripe's amounts read back: a refund of what is still held, once; every
refund of ours watched until Stripe settles it; a refund or dispute event taken as the truth
(refunded by anyone, disputed) for the state, the row and ops' notices.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from vult.domain import payments
from vult.domain.contracts import (
    ChargeFacts,
    RefundInfo,
    WatchedRefund,
)
from vult.domain.failures import Failure
from vult.domain.status import OrderStatus
from vult.temporal import search_attributes as sa
from workflows import attention, decisions, ops_view, steps
from workflows import declared_activities as declared
from workflows.order_actions import row
from workflows.order_actions.context import OrderContext

S = OrderStatus


async def refund_held(ctx: OrderContext, pi: str) -> RefundInfo | None:
    """Refund what is still held of a PaymentIntent, exactly once (state here, the key
    at Stripe). None: nothing is held any more (refunded by someone else, a dispute
    lost), so nothing was asked of Stripe."""
    if pi in ctx.state.money.refunds:
        return ctx.state.money.refunds[pi]
    failed = len(ctx.state.money.failed_refunds.get(pi, []))
    facts = await read_charge(ctx, pi)
    if decisions.is_current(ctx.state, pi):
        notice(ctx, facts)  # a dispute closed while its events were lost, say
    if payments.refund_blocked(facts):
        raise ApplicationError(
            payments.refused_while_disputed(pi),
            type=Failure.DISPUTED,
            non_retryable=True,
        )
    key = steps.refund_key(ctx.order_id, pi, failed)
    found = payments.our_refund(facts, key)
    amount = payments.held(facts)
    if found is None and amount <= 0:
        return None
    refund = found or await steps.refund_payment(ctx.order_id, pi, retry=failed, amount=amount)
    ctx.state.money.refunds[pi] = refund
    if found is None:
        ops_view.count("vult_refunds_total", "Refunds issued")
        ctx.state.money.charges[pi] = with_refund(facts, refund)
    return refund


async def read_charge(ctx: OrderContext, pi: str) -> ChargeFacts:
    facts = await declared.read_charge(pi)
    ctx.state.money.charges[pi] = facts
    return facts


async def learn(ctx: OrderContext, pi: str) -> str:
    """Read the PaymentIntent's amounts back from Stripe (after a refund or dispute
    event, before fulfilment) and take them as the truth: the state, the row, the
    notices for ops. Our own refund that failed is still owed: it parks the order."""
    facts = await read_charge(ctx, pi)
    if ctx.state.money.retry_asked and decisions.watched_owed(ctx.state, pi):
        await refund_watched_again(ctx, pi)
        facts = await read_charge(ctx, pi)
    newly_failed = decisions.settle_watched(ctx.state, pi, facts)
    known = ctx.state.money.refunds.get(pi)
    mine = next((r for r in facts.refunds if known and r.refund_id == known.refund_id), None)
    failed = mine is not None and mine.status in payments.DEAD_REFUND
    if mine is not None and not failed:
        ctx.state.money.refunds[pi] = mine
    again = ctx.state.money.retry_asked and pi in ctx.state.money.failed_refunds
    if known is None and again and payments.held(facts) > 0:
        # Only ops' `retry` refunds again after a refund failed: they may have paid the
        # customer back another way (then they `resolve` instead).
        ctx.state.money.retry_asked = False
        refund = await refund_held(ctx, pi)
        return f"refunded {pi} again: {refund.refund_id if refund else 'nothing held'}"
    if decisions.is_current(ctx.state, pi) and facts.amount_captured > 0:
        dispute = facts.dispute
        # Our refund failed and the money is still owed: the row says so until a
        # refund goes through (or ops resolve it), whatever later events say.
        owed = pi in ctx.state.money.failed_refunds and pi not in ctx.state.money.refunds
        owed = failed or (owed and payments.held(facts) > 0)
        owed = owed or bool(decisions.watched_owed(ctx.state, pi))
        await row.annotate(
            ctx,
            stripe_payment_status="refund_failed" if owed else payments.payment_status(facts),
            amount_refunded=row.major(ctx, facts.amount_refunded),
            dispute_status=dispute.status if dispute else None,
        )
        notice(ctx, facts)
    if newly_failed:
        lost = newly_failed[0]
        raise ApplicationError(
            f"The refund of {lost.amount} minor units for {lost.what} ({lost.refund_id}, "
            f"{pi}) {lost.status} at Stripe: the money is still owed. Retry to refund it "
            "again, or pay the customer back another way",
            type=Failure.REFUND_FAILED,
            non_retryable=True,
        )
    if failed:
        assert mine is not None
        del ctx.state.money.refunds[pi]
        ctx.state.money.failed_refunds.setdefault(pi, []).append(mine.refund_id)
        raise ApplicationError(
            f"Refund {mine.refund_id} of {pi} {mine.status} at Stripe: the money is "
            "still owed. Retry to refund again, or pay the customer back another way",
            type=Failure.REFUND_FAILED,
            non_retryable=True,
        )
    dispute_note = f", dispute {facts.dispute.status}" if facts.dispute else ""
    return (
        f"{pi}: captured {facts.amount_captured}, refunded {facts.amount_refunded}"
        f"{dispute_note} (minor units)"
    )


def notice(ctx: OrderContext, facts: ChargeFacts) -> None:
    """What ops must know of the paying PaymentIntent's amounts: no money held for an
    order not yet shipped, an open dispute (searchable as `Disputed`)."""
    state, indexed = ctx.state, ctx.index_for_search
    if not payments.still_paid(facts) and state.status in (S.Confirmed, S.Processing):
        attention.notify(
            state,
            indexed,
            "unpaid",
            f"No money is held for this order any more ({payments.payment_status(facts)} "
            "at Stripe): it is not fulfilled; cancel it, or settle it with the customer",
        )
    else:
        attention.clear_notice(state, indexed, "unpaid")
    dispute = facts.dispute
    if payments.dispute_open(facts):
        assert dispute is not None
        due = f"{dispute.evidence_due_by:%Y-%m-%d %H:%M} UTC" if dispute.evidence_due_by else "?"
        if "dispute" not in state.ops.notices:
            ops_view.index(indexed, sa.DISPUTED.value_set(True))
            ops_view.count("vult_disputes_opened_total", "Disputes opened on orders' payments")
        attention.notify(
            state,
            indexed,
            "dispute",
            f"Dispute {dispute.dispute_id} ({dispute.reason or 'no reason'}) of "
            f"{dispute.amount} minor units is {dispute.status}: evidence due by {due}",
        )
    elif "dispute" in state.ops.notices:
        ops_view.index(indexed, sa.DISPUTED.value_set(False))
        attention.clear_notice(state, indexed, "dispute")


async def remind_of_evidence(ctx: OrderContext) -> None:
    """A day or more before a dispute's evidence is due: tell ops again."""
    pi = ctx.state.payments.current.payment_intent_id if ctx.state.payments.current else ""
    facts = ctx.state.money.charges.get(pi)
    dispute = facts.dispute if facts else None
    if dispute is None:
        return
    ctx.state.ops.dispute_reminded = dispute.dispute_id
    if payments.dispute_open(facts):
        ops_view.count("vult_dispute_evidence_reminders_total", "Dispute evidence reminders")
        attention.notify(
            ctx.state,
            ctx.index_for_search,
            "dispute",
            f"Dispute {dispute.dispute_id}: evidence due by "
            f"{dispute.evidence_due_by:%Y-%m-%d %H:%M} UTC, soon: submit it in the Dashboard",
        )


def watch(ctx: OrderContext, pi: str, key: str, what: str, refund: RefundInfo) -> None:
    """Watch a refund this service made until Stripe settles it (a card refund can fail
    days later, even after it succeeded): a failure parks the order."""
    ctx.state.money.watched_refunds[key] = WatchedRefund(
        payment_intent_id=pi,
        key=key,
        what=what,
        amount=refund.amount,
        refund_id=refund.refund_id,
        status=refund.status,
    )


async def refund_watched_again(ctx: OrderContext, pi: str) -> None:
    """Ops' `retry` of refunds that failed at Stripe: each made again, under a fresh key
    of its step (never more than is held)."""
    ctx.state.money.retry_asked = False
    for watched in decisions.watched_owed(ctx.state, pi):
        # The same key until it is made: a try that parks asks it again, not twice.
        again = watched.retries + 1
        refund = await steps.refund_payment(
            ctx.order_id, pi, amount=watched.amount, key=payments.again_key(watched.key, again)
        )
        ops_view.count("vult_refunds_total", "Refunds issued")
        watched.refund_id, watched.status, watched.retries = (
            refund.refund_id,
            refund.status,
            again,
        )


def with_refund(facts: ChargeFacts, refund: RefundInfo) -> ChargeFacts:
    """The amounts once `refund` (just made) is counted."""
    live = refund.status not in payments.DEAD_REFUND
    return facts.model_copy(
        update={
            "amount_refunded": facts.amount_refunded + (refund.amount if live else 0),
            "refunds": [refund, *facts.refunds],
        }
    )
