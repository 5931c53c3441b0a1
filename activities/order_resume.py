"""Resuming an order whose workflow is gone (workflows/order_sweep.py decides when).

`resume_order` starts a new run of `order-<orderId>` whose state is read from the order's
row (its status, number, total, PaymentIntents, cancellation) and from Stripe (the current
PaymentIntent, for its amount and the customer's client secret). The run's first work is
to read Stripe's word on every PaymentIntent of the order and carry on from there
(workflows/order_actions/resume.py). The start itself keeps the rule that a run which ended
normally is never resumed: Temporal starts the new run only after a run that failed, was
terminated, cancelled or timed out (ALLOW_DUPLICATE_FAILED_ONLY), or when none ever ran.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from vult.db.models import ORDER_PAYMENT_INTENTS, ORDERS
from vult.domain.contracts import (
    Cancelling,
    Fulfilment,
    Hold,
    Money,
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
    PaymentIntentInfo,
    Payments,
    ResumedRun,
    ResumeOutcome,
)
from vult.domain.money import to_minor_units
from vult.domain.status import OrderStatus, may_still_change, returns_open
from vult.temporal import search_attributes as sa
from vult.temporal.orphans import ending, orders_without_workflow, workflow_id

S = OrderStatus
# An ended run's local activity already under way (a row write: 10 s at most, workflows/
# policies.py DB_WRITE) may still land after the run closed; the row is read after that.
SETTLE = timedelta(seconds=15)


class OrderResumeActivities:
    def __init__(
        self,
        engine: AsyncEngine,
        client: Client,
        stripe_client: stripe.StripeClient,
        task_queue: str,
        timing: OrderTiming,
        capture: str = "automatic",
    ) -> None:
        self._capture = capture  # PAYMENT_CAPTURE, for a payment the resumed order takes
        self._engine = engine
        self._client = client
        self._stripe = stripe_client
        self._task_queue = task_queue
        self._timing = timing

    @activity.defn(name="find_orders_to_resume")
    async def find_orders_to_resume(self, limit: int) -> list[uuid.UUID]:
        """Orders that can still change whose workflow is not running, oldest first."""
        return await orders_without_workflow(
            self._engine, self._client, limit=limit, return_window=self._timing.return_window
        )

    @activity.defn(name="resume_order")
    async def resume_order(self, order_id: uuid.UUID) -> ResumeOutcome:
        """A new run of the order's workflow from its row, if it can still change and its
        workflow is gone; otherwise what stood in the way."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(ORDERS).where(ORDERS.c.order_id == order_id))
            ).one_or_none()
            pis = list(
                await conn.scalars(
                    select(ORDER_PAYMENT_INTENTS.c.payment_intent_id)
                    .where(ORDER_PAYMENT_INTENTS.c.order_id == order_id)
                    .order_by(ORDER_PAYMENT_INTENTS.c.created_date)
                )
            )
        if row is None:
            return ResumeOutcome(order_id=order_id, outcome="not_found")
        open_for_returns = returns_open(
            row.delivered_date, self._timing.return_window, datetime.now(UTC)
        )
        if not may_still_change(
            row.status, row.stripe_payment_status, row.resolution_note, open_for_returns
        ):
            return ResumeOutcome(order_id=order_id, outcome="settled")
        ended, closed = await ending(self._client, order_id)
        if ended is None:
            return ResumeOutcome(order_id=order_id, outcome="running_or_completed")
        if closed is not None and datetime.now(UTC) - closed < SETTLE:
            # A step the ended run had begun (a row write) may still land: the row is read
            # once it cannot any more. Retried (the activity's policy) until then.
            raise ApplicationError(
                f"order {order_id}'s workflow ended at {closed:%H:%M:%S} UTC: resumed once "
                f"its last steps have settled ({SETTLE.total_seconds():.0f} s)"
            )
        current = row.stripe_payment_intent_id
        if current is not None and current not in pis:
            pis.append(current)
        now = datetime.now(UTC)
        status = S(row.status)
        state = OrderState(
            status=status,
            order_number=row.order_number,
            total=row.total,
            currency=row.currency,
            created_at=row.created_date,
            payments=Payments(
                # Each attempt made one PaymentIntent; a next attempt's key is new. One made
                # at Stripe but never recorded gets its key again: Stripe answers with it.
                attempt=len(pis),
                current=await self._payment(current, row) if current else None,
                intent_ids=pis,
                next_reconcile_at=now + self._timing.reconcile_after,
            ),
            cancelling=Cancelling(
                at=row.updated_date if status == S.Cancelled else None,
                reason=row.cancellation_reason,
                # A cancellation the customer was told of (202) while the payment was
                # mid-charge: the resumed run completes it.
                pending=row.pending_cancel_reason if status != S.Cancelled else None,
            ),
            hold=Hold(
                captured=to_minor_units(row.amount_captured, row.currency)
                if row.amount_captured is not None
                else None
            ),
            fulfilment=Fulfilment(delivered_at=row.delivered_date),
            # Failed refunds ops settled by hand: not owed again.
            money=Money(settled_refund_ids=list(row.settled_refund_ids or [])),
            resumes=[ResumedRun(at=now, previous=ended)],
            catching_up=True,
            # Numbered on from the row's last write: this run's state is read from the row
            # as it stands, whatever the ended run saw of it.
            writes=row.workflow_write or 0,
        )
        try:
            await self._client.start_workflow(
                "OrderWorkflow",
                OrderWorkflowInput(
                    order_id=order_id, timing=self._timing, state=state, capture=self._capture
                ),
                id=workflow_id(order_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=sa.order_summary(
                    row.order_number, row.customer_email, row.total, row.currency
                ),
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.ORDER_NUMBER, row.order_number),
                        SearchAttributePair(sa.CUSTOMER_EMAIL, row.customer_email),
                        SearchAttributePair(sa.ORDER_STATUS, row.status),
                        SearchAttributePair(sa.ORDER_TOTAL, float(row.total)),
                        SearchAttributePair(sa.RESUMED, True),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            # Resumed meanwhile (the sweep and a command at once), or it completed.
            return ResumeOutcome(order_id=order_id, outcome="running_or_completed")
        activity.metric_meter().create_counter(
            "vult_orders_resumed_total",
            "Orders whose workflow was gone while they could still change, resumed",
        ).add(1, {"previous": ended.lower()})
        activity.logger.warning(
            "Resumed order %s (%s): its workflow was %s", order_id, row.status, ended
        )
        return ResumeOutcome(order_id=order_id, outcome="resumed", previous=ended)

    async def _payment(self, pi: str, row: Any) -> PaymentIntentInfo:
        """The current PaymentIntent as the order's workflow keeps it. Only a customer who
        may still pay needs its client secret, read from Stripe; one Stripe does not know
        (deleted, another account) resumes without it, and the run's first read of it
        parks the order for ops with Stripe's answer."""
        secret = ""
        if row.status == S.PaymentProcessing:
            try:
                found = await self._stripe.v1.payment_intents.retrieve_async(pi)
                secret = found.client_secret or ""
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404:
                    raise
                activity.logger.error("Resuming order %s: Stripe has no %s", row.order_id, pi)
        return PaymentIntentInfo(
            payment_intent_id=pi,
            client_secret=secret,
            amount=to_minor_units(row.total, row.currency),
            currency=row.currency.lower(),
        )
