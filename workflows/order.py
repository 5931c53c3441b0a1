"""OrderWorkflow: one durable workflow per order, from placement through payment.

The workflow holds the decisions: which transitions are allowed, which Stripe event counts,
what to ignore. Activities do the writes and calls. Every status write names the status it
expects to find, so a replayed or late step can never move an order backwards.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import errors
    from activities.order_db import OrderDbActivities
    from activities.stripe_payments import StripeActivities
    from vult.contracts import (
        CreateOrderRow,
        CreatePaymentIntent,
        OrderState,
        OrderWorkflowInput,
        PaymentEvent,
        PaymentIntentInfo,
        PaymentIntentSnapshot,
        PlacedOrder,
        StatusChange,
    )
    from vult.money import to_minor_units
    from vult.orders import PAYABLE, OrderStatus, can_transition
    from workflows import policies

S = OrderStatus
# Stripe may deliver an event more than once; remembering the last few hundred ids is
# plenty, as each order sees a handful of events.
_SEEN_EVENTS_KEPT = 200


def workflow_id_for(order_id: uuid.UUID) -> str:
    """Ops go from an order to its history in one step: the id is derived from the order's."""
    return f"order-{order_id}"


def _application_cause(err: ActivityError | ApplicationError) -> ApplicationError | None:
    """The ApplicationError an activity raised. A local activity's failure can surface
    unwrapped, a regular activity's as the cause of an ActivityError: accept both."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause if isinstance(cause, ApplicationError) else None


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderWorkflowInput) -> None:
        self._input = input
        self._state = input.state or OrderState()
        self._rejection: list[str] | None = None
        self._events: list[PaymentEvent] = []
        # Updates and event handling interleave at every await; one lock keeps each
        # decision-and-write atomic with respect to the others.
        self._lock = asyncio.Lock()

    # ---- the main line ----------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderState:
        if self._state.status is None and not await self._create_order():
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._state

        while not self._finished():
            await workflow.wait_condition(lambda: bool(self._events) or self._finished())
            while self._events:
                event = self._events.pop(0)
                async with self._lock:
                    await self._apply_payment_event(event)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    OrderWorkflowInput(
                        order_id=input.order_id, request=input.request, state=self._state
                    )
                )

        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    def _finished(self) -> bool:
        return self._state.status == S.Delivered

    async def _create_order(self) -> bool:
        try:
            created = await workflow.execute_local_activity_method(
                OrderDbActivities.create_order_row,
                CreateOrderRow(
                    order_id=self._input.order_id,
                    created_at=workflow.now(),
                    request=self._input.request,
                ),
                **policies.CREATE_ORDER,
            )
        except (ActivityError, ApplicationError) as err:
            cause = _application_cause(err)
            if cause is None or cause.type != errors.INVALID_ORDER:
                raise ApplicationError(f"The order could not be created: {err}") from err
            self._rejection = [str(m) for m in (cause.details[0] if cause.details else [])]
            return False
        self._state.status = created.status
        self._state.order_number = created.order_number
        self._state.total = created.total
        self._state.currency = created.currency
        return True

    # ---- updates (the API's commands) ---------------------------------------------------

    @workflow.update
    async def place(self) -> PlacedOrder:
        """Sent with the start (update-with-start): answers once the order row exists."""
        await workflow.wait_condition(
            lambda: self._state.status is not None or self._rejection is not None
        )
        if self._rejection is not None:
            raise ApplicationError(
                "The order is not valid", self._rejection, type=errors.INVALID_ORDER
            )
        assert self._state.order_number is not None and self._state.status is not None
        return PlacedOrder(
            order_id=self._input.order_id,
            order_number=self._state.order_number,
            status=self._state.status,
        )

    @workflow.update
    async def request_payment(self) -> PaymentIntentInfo:
        """Pending or Failed: create a PaymentIntent. PaymentProcessing: return the current one."""
        await workflow.wait_condition(
            lambda: self._state.status is not None or self._rejection is not None
        )
        async with self._lock:
            self._check_payable()
            status = self._state.status
            assert status is not None
            if status == S.PaymentProcessing and self._state.payment is not None:
                return self._state.payment
            attempt = self._state.payment_attempt + 1
            intent = await self._create_payment_intent(attempt)
            await self._change(
                status, S.PaymentProcessing, payment_intent_id=intent.payment_intent_id
            )
            self._state.payment_attempt = attempt
            self._state.payment = intent
            return intent

    @request_payment.validator
    def _validate_request_payment(self) -> None:
        self._check_payable()

    def _check_payable(self) -> None:
        if self._rejection is not None:
            raise ApplicationError("Order not found", type=errors.ORDER_NOT_FOUND)
        status = self._state.status
        if status is not None and status not in PAYABLE and status != S.PaymentProcessing:
            raise ApplicationError(
                f"Cannot process payment for order with status: {status}",
                type=errors.INVALID_TRANSITION,
            )

    async def _create_payment_intent(self, attempt: int) -> PaymentIntentInfo:
        assert self._state.total is not None and self._state.currency is not None
        assert self._state.order_number is not None
        order_id = self._input.order_id
        try:
            return await workflow.execute_activity_method(
                StripeActivities.create_payment_intent,
                CreatePaymentIntent(
                    order_id=order_id,
                    order_number=self._state.order_number,
                    amount=to_minor_units(self._state.total, self._state.currency),
                    currency=self._state.currency,
                    # The same attempt always sends the same key, so a retry after a lost
                    # response cannot create a second PaymentIntent at Stripe.
                    idempotency_key=f"order:{order_id}:payment-intent:{attempt}",
                ),
                **policies.STRIPE_INTERACTIVE,
            )
        except (ActivityError, ApplicationError) as err:
            cause = _application_cause(err)
            if cause is not None and cause.type == errors.PAYMENT_REFUSED:
                raise ApplicationError(cause.message, type=errors.PAYMENT_REFUSED) from err
            raise ApplicationError(
                "The payment service is unavailable; please try again",
                type=errors.PAYMENT_UNAVAILABLE,
            ) from err

    # ---- signals (Stripe's word, verified by the API) ------------------------------------

    @workflow.signal
    def payment_event(self, event: PaymentEvent) -> None:
        seen = self._state.seen_event_ids
        if event.event_id in seen:
            return
        seen.append(event.event_id)
        del seen[:-_SEEN_EVENTS_KEPT]
        self._events.append(event)

    async def _apply_payment_event(self, event: PaymentEvent) -> None:
        self._state.last_payment_note = await self._decide_on_payment_event(event)

    async def _decide_on_payment_event(self, event: PaymentEvent) -> str:
        """Apply what Stripe says about the event's PaymentIntent; say what was done."""
        payment = self._state.payment
        pi = event.payment_intent_id
        if payment is None or pi != payment.payment_intent_id:
            return f"{event.event_type} for {pi} ignored: not the order's current PaymentIntent"
        # Act on what Stripe says now, not on the event alone: events arrive late, twice
        # and out of order, and the PaymentIntent's own status settles all three.
        intent: PaymentIntentSnapshot = await workflow.execute_activity_method(
            StripeActivities.retrieve_payment_intent, pi, **policies.STRIPE_BACKGROUND
        )
        status = self._state.status
        if intent.status == "succeeded":
            if status not in (S.PaymentProcessing, S.Failed):
                return f"{pi} succeeded; order already {status}"
            if intent.amount != payment.amount or intent.currency != payment.currency:
                workflow.logger.warning(
                    "PaymentIntent %s is for %s %s, the order expects %s %s: not confirming",
                    pi,
                    intent.amount,
                    intent.currency,
                    payment.amount,
                    payment.currency,
                )
                return (
                    f"{pi} succeeded for {intent.amount} {intent.currency}, but the order "
                    f"expects {payment.amount} {payment.currency}: not confirmed"
                )
            if status == S.Failed:
                # The customer retried the same PaymentIntent and it went through.
                await self._change(S.Failed, S.PaymentProcessing)
            await self._change(S.PaymentProcessing, S.Confirmed, stripe_payment_status="succeeded")
            return f"{pi} succeeded: order confirmed"
        if intent.status == "requires_payment_method" and intent.last_error_message:
            if status != S.PaymentProcessing:
                return f"{pi} failed; order already {status}"
            await self._change(
                S.PaymentProcessing,
                S.Failed,
                stripe_payment_status="failed",
                payment_error_message=intent.last_error_message,
            )
            return f"{pi} failed: {intent.last_error_message}"
        return f"{pi} is {intent.status}: nothing to do"

    # ---- queries --------------------------------------------------------------------------

    @workflow.query
    def state(self) -> OrderState:
        return self._state

    # ---- the one way a status changes ----------------------------------------------------

    async def _change(
        self,
        current: OrderStatus,
        new: OrderStatus,
        *,
        payment_intent_id: str | None = None,
        stripe_payment_status: str | None = None,
        payment_error_message: str | None = None,
    ) -> None:
        if not can_transition(current, new):
            raise ApplicationError(
                f"Cannot change order status from {current} to {new}",
                type=errors.INVALID_TRANSITION,
            )
        try:
            await workflow.execute_local_activity_method(
                OrderDbActivities.change_order_status,
                StatusChange(
                    order_id=self._input.order_id,
                    expected=[current],
                    new_status=new,
                    at=workflow.now(),
                    payment_intent_id=payment_intent_id,
                    stripe_payment_status=stripe_payment_status,
                    payment_error_message=payment_error_message,
                ),
                **policies.DB_WRITE,
            )
        except (ActivityError, ApplicationError) as err:
            cause = _application_cause(err)
            if cause is not None and cause.type == errors.STATUS_CONFLICT:
                # The row and the workflow disagree: something outside the workflow changed
                # it. Failing the workflow task (not the workflow) holds the order here,
                # visible in the Web UI, and retries once ops have put the row right.
                raise RuntimeError(f"Order row out of step with its workflow: {cause}") from err
            raise
        self._state.status = new
