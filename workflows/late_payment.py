"""LatePaymentWorkflow: Stripe's word on a PaymentIntent whose order's workflow has closed
(delivered, or cancelled and past its grace period) or never ran.

The API starts it when a webhook finds no running order workflow, with the id
`late-payment-<PaymentIntent id>`: a second webhook for the same PaymentIntent joins the
running one. It reads the PaymentIntent and the order row, then refunds a payment that does
not pay its order, or cancels a PaymentIntent nobody would now confirm. The refund activity
returns any refund Stripe already holds, and its key is the order workflow's own, so the
money goes back exactly once whoever asks. Like the order's workflow it never fails: what
no retry fixes parks it for ops (`NeedsAttention`, the `retry` update)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from vult.domain.contracts import LatePayment
from vult.domain.failures import Failure
from workflows import attention, decisions, ops_view, steps
from workflows.decisions import Act

# A PaymentIntent mid-charge settles in seconds to days (bank debits); ask this often.
_SETTLE_WAIT = timedelta(minutes=10)
_RETRY_AFTER = timedelta(minutes=15)
_ROUNDS_PER_RUN = 100  # then continue as new, so the history stays short


def late_payment_workflow_id(payment_intent_id: str) -> str:
    return f"late-payment-{payment_intent_id}"


# PINNED: it lives minutes (a refund or a cancel, a few waits for a settling payment), so
# it finishes on the build it started on and its edits need no patch; an old build is
# drained of these quickly (docs/operations.md, "Deploying new code").
@workflow.defn(name="LatePaymentWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class LatePaymentWorkflow:
    def __init__(self) -> None:
        self._attention: str | None = None
        self._retry = False

    @workflow.run
    async def run(self, late: LatePayment) -> str:
        for _ in range(_ROUNDS_PER_RUN):
            try:
                note = await self._settle(late)
            except (FailureError, asyncio.CancelledError) as err:
                self._park(str(err) or type(err).__name__)
                await self._wait(_RETRY_AFTER)
                continue
            if note is not None:
                if self._attention is not None:
                    attention.unflag(True)
                workflow.set_current_details(note)
                return note
            await self._wait(_SETTLE_WAIT)
        workflow.continue_as_new(late)

    async def _settle(self, late: LatePayment) -> str | None:
        """The note of what was done, or None to ask again later."""
        pi = late.payment_intent_id
        try:
            intent = await steps.retrieve_payment_intent(pi)
        except (ActivityError, ApplicationError) as err:
            cause = steps.application_cause(err)
            if cause is None or cause.type != Failure.PAYMENT_REFUSED:
                raise
            return f"Stripe has no PaymentIntent {pi} for us: nothing to do"
        order_id = late.order_id
        if order_id is None or (intent.order_id is not None and intent.order_id != str(order_id)):
            return f"{pi} names no order of ours: left alone"
        order = await steps.read_order_payment(order_id)
        decision = decisions.on_late_payment(intent, order)
        if decision.act == Act.REFUND:
            refund = await steps.refund_payment(order_id, pi)
            ops_view.count("vult_refunds_total", "Refunds issued")
            workflow.logger.warning("Refunded late payment %s (%s)", pi, refund.refund_id)
            return f"{decision.note}: {refund.refund_id} ({refund.status})"
        if decision.act == Act.CANCEL:
            settled = await steps.cancel_payment_intent(order_id, pi)
            if settled.status == "succeeded":  # paid as we cancelled: refund it
                return await self._settle(late)
            return f"{decision.note}: {settled.status}"
        if decision.act == Act.WAIT:
            workflow.set_current_details(decision.note)
            return None
        return decision.note

    def _park(self, reason: str) -> None:
        first = self._attention is None
        self._attention = f"late payment: {reason}"[:500]
        attention.flag(True, self._attention, first)
        workflow.set_current_details(f"NEEDS ATTENTION: {self._attention}")

    async def _wait(self, delay: timedelta) -> None:
        self._retry = False
        try:
            await workflow.wait_condition(lambda: self._retry, timeout=delay)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            attention.refuse_cancellation()

    @workflow.update
    async def retry(self) -> None:
        """Ops: try again now."""
        self._retry = True

    @workflow.query
    def needs_attention(self) -> str | None:
        return self._attention
