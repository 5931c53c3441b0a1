"""OrderWorkflow: one durable workflow per order, from placement to delivery or cancellation.

The workflow holds the decisions (with the pure rules in workflows/decisions.py): which
transitions are allowed, what a Stripe answer means, when a timer fires. Activities do the
writes and calls. Every status write names the status it expects to find, so a replayed or
late step can never move an order backwards.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import errors
    from activities.order_db import OrderDbActivities
    from activities.stripe_payments import StripeActivities
    from vult import search_attributes as sa
    from vult.contracts import (
        CancelOrder,
        CancelPaymentIntent,
        CreateOrderRow,
        CreatePaymentIntent,
        OrderState,
        OrderWorkflowInput,
        PaymentEvent,
        PaymentIntentInfo,
        PaymentIntentSnapshot,
        PlacedOrder,
        RefundInfo,
        RefundPayment,
        ShipOrder,
        StatusChange,
    )
    from vult.money import to_minor_units
    from vult.orders import PAYABLE, OrderStatus, can_transition
    from vult.stripe_events import REFUND_EVENTS
    from workflows import decisions, policies
    from workflows.decisions import CANCELLABLE, UNPAID, Act, Timer

S = OrderStatus
# Stripe may deliver an event more than once; remembering the last few hundred ids is
# plenty, as each order sees a handful of events.
_SEEN_EVENTS_KEPT = 200
# A PaymentIntent mid-charge cannot be cancelled; ask again this often, this many times.
_IN_FLIGHT_RETRY = timedelta(seconds=30)
_IN_FLIGHT_TRIES = 20


def workflow_id_for(order_id: uuid.UUID) -> str:
    """Ops go from an order to its history in one step: the id is derived from the order's."""
    return f"order-{order_id}"


def _application_cause(err: ActivityError | ApplicationError) -> ApplicationError | None:
    """The ApplicationError an activity raised. A local activity's failure can surface
    unwrapped, a regular activity's as the cause of an ActivityError: accept both."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause if isinstance(cause, ApplicationError) else None


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=errors.INVALID_TRANSITION, non_retryable=True)


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderWorkflowInput) -> None:
        self._input = input
        self._timing = input.timing
        self._state = input.state or OrderState()
        self._rejection: list[str] | None = None
        self._events: list[PaymentEvent] = []
        self._wake = False  # set by handlers whose change moves a timer
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None
        self._timer_fired = False
        # Updates, events and timers interleave at every await; one lock keeps each
        # decision-and-write atomic with respect to the others.
        self._lock = asyncio.Lock()

    # ---- the main line ----------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderState:
        if self._state.status is None and not await self._create_order():
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._state

        while not decisions.finished(self._state, self._timing, workflow.now()):
            await self._wait_for_something()
            while self._events:
                event = self._events.pop(0)
                async with self._lock:
                    self._state.last_payment_note = await self._on_event(event)
            for due_at, timer in decisions.deadlines(self._state, self._timing):
                if due_at <= workflow.now():
                    async with self._lock:
                        await self._on_timer(timer)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    OrderWorkflowInput(
                        order_id=input.order_id,
                        request=input.request,
                        timing=self._timing,
                        index_for_search=input.index_for_search,
                        state=self._state,
                    )
                )

        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _wait_for_something(self) -> None:
        """Sleep until an event, a handler's change, or the next durable timer.

        One timer runs for the earliest deadline and is replaced only when that deadline
        changes, rather than a new timer on every wake-up."""
        self._describe()
        self._wake = False
        upcoming = decisions.deadlines(self._state, self._timing)
        due = upcoming[0][0] if upcoming else None
        if due is not None and due <= workflow.now():
            return
        if due != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at, self._timer_fired = due, False
            self._timer = None if due is None else asyncio.create_task(self._sleep_until(due))
        await workflow.wait_condition(lambda: bool(self._events) or self._wake or self._timer_fired)

    async def _sleep_until(self, due: datetime) -> None:
        try:
            await workflow.sleep(max(due - workflow.now(), timedelta(milliseconds=1)))
        except asyncio.CancelledError:
            return
        self._timer_fired = True

    async def _create_order(self) -> bool:
        created_at = workflow.now()
        try:
            created = await workflow.execute_local_activity_method(
                OrderDbActivities.create_order_row,
                CreateOrderRow(
                    order_id=self._input.order_id,
                    created_at=created_at,
                    request=self._input.request,
                    order_number=self._input.order_number,
                ),
                summary="Snapshot the products, total the order and save it",
                **policies.CREATE_ORDER,
            )
        except (ActivityError, ApplicationError) as err:
            cause = _application_cause(err)
            if cause is None or cause.type != errors.INVALID_ORDER:
                raise ApplicationError(f"The order could not be created: {err}") from err
            self._rejection = [str(m) for m in (cause.details[0] if cause.details else [])]
            # Indexed at the start as a Pending order that now will never exist.
            started = workflow.info().typed_search_attributes
            self._index(*(key.value_unset() for key in sa.ALL if started.get(key) is not None))
            return False
        self._state.status = created.status
        self._state.order_number = created.order_number
        self._state.total = created.total
        self._state.currency = created.currency
        self._state.created_at = created_at
        # The API indexes the order when it starts the workflow, under the number it drew
        # and the total it quoted: upsert only what the row turned out to differ in (a
        # taken number, a price changed meanwhile, or a start without attributes). Each
        # upsert is a visibility write on the server (docs/performance.md).
        wanted = (
            sa.ORDER_NUMBER.value_set(created.order_number),
            sa.CUSTOMER_EMAIL.value_set(self._input.request.customer_email),
            sa.ORDER_STATUS.value_set(created.status.value),
            sa.ORDER_TOTAL.value_set(float(created.total)),
        )
        started = workflow.info().typed_search_attributes
        self._index(*(u for u in wanted if started.get(u.key) != u.value))
        self._count("vult_orders_created_total", "Orders placed")
        self._describe()
        return True

    async def _until_created(self) -> None:
        await workflow.wait_condition(
            lambda: self._state.status is not None or self._rejection is not None
        )
        self._require_placed()

    def _require_placed(self) -> None:
        """An order that was refused at placement does not exist for any command."""
        if self._rejection is not None:
            raise ApplicationError("Order not found", type=errors.ORDER_NOT_FOUND)

    # ---- updates: the customer's and ops' commands ---------------------------------------

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
        await self._until_created()
        async with self._lock:
            self._check_payable()
            status = self._state.status
            assert status is not None
            if status == S.PaymentProcessing and self._state.payment is not None:
                return self._state.payment
            attempt = self._state.payment_attempt + 1
            intent = await self._create_payment_intent(attempt)
            self._state.payment_attempt = attempt
            self._state.payment_intent_ids.append(intent.payment_intent_id)
            await self._change(
                status, S.PaymentProcessing, payment_intent_id=intent.payment_intent_id
            )
            self._state.payment = intent
            self._state.reconcile_attempts = 0
            self._state.next_reconcile_at = workflow.now() + self._timing.reconcile_after
            self._wake = True
            return intent

    @request_payment.validator
    def _validate_request_payment(self) -> None:
        self._check_payable()

    def _check_payable(self) -> None:
        self._require_placed()
        status = self._state.status
        if status is not None and status not in PAYABLE and status != S.PaymentProcessing:
            raise _refused(f"Cannot process payment for order with status: {status}")

    @workflow.update
    async def cancel(self, command: CancelOrder) -> None:
        """Cancel: release or refund any payment first, then record Cancelled."""
        await self._until_created()
        async with self._lock:
            self._check_cancellable()
            await self._cancel(command.reason)

    @cancel.validator
    def _validate_cancel(self, command: CancelOrder) -> None:
        if not command.reason.strip() or len(command.reason) > 500:
            raise _refused("A cancellation reason of 1 to 500 characters is required")
        self._check_cancellable()

    def _check_cancellable(self) -> None:
        self._require_placed()
        status = self._state.status
        if status is not None and status not in CANCELLABLE:
            raise _refused(f"Cannot cancel order with status: {status}")

    @workflow.update
    async def start_processing(self) -> None:
        """Ops: Confirmed -> Processing (fulfilment has begun)."""
        async with self._lock:
            self._require(S.Confirmed, "start processing")
            await self._change(S.Confirmed, S.Processing)

    @start_processing.validator
    def _validate_start_processing(self) -> None:
        self._require(S.Confirmed, "start processing")

    @workflow.update
    async def ship(self, shipment: ShipOrder) -> None:
        """Ops: Processing -> Shipped, with the carrier and tracking number."""
        async with self._lock:
            self._require(S.Processing, "ship")
            await self._change(
                S.Processing,
                S.Shipped,
                shipping_carrier=shipment.carrier.strip(),
                tracking_number=shipment.tracking_number.strip(),
            )

    @ship.validator
    def _validate_ship(self, shipment: ShipOrder) -> None:
        if not (0 < len(shipment.carrier.strip()) <= 100):
            raise _refused("A carrier of 1 to 100 characters is required")
        if not (0 < len(shipment.tracking_number.strip()) <= 100):
            raise _refused("A tracking number of 1 to 100 characters is required")
        self._require(S.Processing, "ship")

    @workflow.update
    async def deliver(self) -> None:
        """Ops: Shipped -> Delivered. The workflow then completes."""
        async with self._lock:
            self._require(S.Shipped, "deliver")
            await self._change(S.Shipped, S.Delivered)
            self._wake = True

    @deliver.validator
    def _validate_deliver(self) -> None:
        self._require(S.Shipped, "deliver")

    def _require(self, status: OrderStatus, action: str) -> None:
        if self._state.status != status:
            raise _refused(f"Cannot {action} an order with status: {self._state.status}")

    # ---- signals: Stripe's word, verified by the API -------------------------------------

    @workflow.signal
    def payment_event(self, event: PaymentEvent) -> None:
        seen = self._state.seen_event_ids
        if event.event_id in seen:
            return
        seen.append(event.event_id)
        del seen[:-_SEEN_EVENTS_KEPT]
        self._events.append(event)

    async def _on_event(self, event: PaymentEvent) -> str:
        pi = event.payment_intent_id
        if pi not in self._state.payment_intent_ids:
            return f"{event.event_type} for {pi} ignored: not one of this order's PaymentIntents"
        if event.event_type in REFUND_EVENTS:
            return await self._check_refund(pi)
        # Act on what Stripe says now, not on the event alone: events arrive late, twice
        # and out of order, and the PaymentIntent's own status settles all three.
        return await self._apply(await self._retrieve(pi))

    # ---- timers --------------------------------------------------------------------------

    async def _on_timer(self, timer: Timer) -> None:
        if timer == Timer.RECONCILE:
            await self._reconcile()
        elif timer == Timer.PAYMENT_WINDOW:
            await self._expire_payment_window()
        # GRACE_OVER needs nothing: the main loop sees the order is finished.

    async def _reconcile(self) -> None:
        """No webhook for a while: ask Stripe, and apply its answer as the webhook would."""
        payment = self._state.payment
        if self._state.status != S.PaymentProcessing or payment is None:
            return
        note = await self._apply(await self._retrieve(payment.payment_intent_id))
        self._state.last_payment_note = f"reconciled: {note}"
        if self._state.status == S.PaymentProcessing:
            self._state.reconcile_attempts += 1
            self._state.next_reconcile_at = workflow.now() + decisions.reconcile_delay(
                self._timing, self._state.reconcile_attempts
            )

    async def _expire_payment_window(self) -> None:
        if self._state.status not in UNPAID:
            return
        if self._state.payment is not None:
            # Paid in time but not yet told? Then the order is confirmed, not cancelled.
            await self._apply(await self._retrieve(self._state.payment.payment_intent_id))
        if self._state.status in UNPAID:
            await self._cancel("payment window expired")

    # ---- carrying out decisions ------------------------------------------------------------

    async def _apply(self, intent: PaymentIntentSnapshot) -> str:
        decision = decisions.on_payment_intent(self._state, str(self._input.order_id), intent)
        status = self._state.status
        pi = intent.payment_intent_id
        if decision.act == Act.CONFIRM:
            if status == S.Failed:
                # The customer retried the same PaymentIntent and it went through.
                await self._change(S.Failed, S.PaymentProcessing)
            await self._change(
                S.PaymentProcessing, S.Confirmed, stripe_payment_status=decision.stripe_status
            )
        elif decision.act == Act.FAIL:
            await self._change(
                S.PaymentProcessing,
                S.Failed,
                stripe_payment_status=decision.stripe_status,
                payment_error_message=decision.error_message,
            )
        elif decision.act == Act.RECORD and status is not None:
            await self._annotate(stripe_payment_status=decision.stripe_status)
        elif decision.act == Act.REFUND:
            refund = await self._refund(pi)
            if decision.also_fail:
                await self._change(
                    S.PaymentProcessing,
                    S.Failed,
                    stripe_payment_status="refunded",
                    payment_error_message=decision.error_message,
                )
            elif decisions.is_current(self._state, pi) and status is not None:
                await self._annotate(
                    stripe_payment_status=_refund_status(refund),
                    stripe_refund_id=refund.refund_id,
                )
            workflow.logger.warning("Refunded %s (%s): %s", pi, refund.refund_id, decision.note)
        return decision.note

    async def _cancel(self, reason: str) -> None:
        status = self._state.status
        assert status in CANCELLABLE
        payment = self._state.payment
        refund: RefundInfo | None = None
        stripe_status: str | None = None
        if payment is not None and status in (S.PaymentProcessing, S.Failed):
            intent = await self._cancel_payment_intent(payment.payment_intent_id)
            if intent.status == "succeeded":
                refund = await self._refund(payment.payment_intent_id)
                stripe_status = _refund_status(refund)
            else:
                stripe_status = "canceled"
        elif payment is not None and status == S.Confirmed:
            refund = await self._refund(payment.payment_intent_id)
            stripe_status = _refund_status(refund)
        await self._change(
            status,
            S.Cancelled,
            cancellation_reason=reason,
            stripe_refund_id=refund.refund_id if refund else None,
            stripe_payment_status=stripe_status,
        )
        self._state.cancelled_at = workflow.now()
        self._state.cancellation_reason = reason
        self._wake = True

    async def _cancel_payment_intent(self, pi: str) -> PaymentIntentSnapshot:
        for _ in range(_IN_FLIGHT_TRIES):
            intent = await workflow.execute_activity_method(
                StripeActivities.cancel_payment_intent,
                CancelPaymentIntent(
                    payment_intent_id=pi,
                    idempotency_key=f"order:{self._input.order_id}:cancel:{pi}",
                ),
                summary=f"Cancel PaymentIntent {pi} at Stripe",
                **policies.STRIPE_BACKGROUND,
            )
            if intent.status != "processing":
                return intent
            await workflow.sleep(_IN_FLIGHT_RETRY)  # mid-charge: wait for it to settle
        raise ApplicationError(
            f"PaymentIntent {pi} stayed processing; try the cancellation again later",
            type=errors.PAYMENT_UNAVAILABLE,
        )

    async def _refund(self, pi: str) -> RefundInfo:
        """Refund a PaymentIntent in full, exactly once (state here, the key at Stripe)."""
        if pi in self._state.refunds:
            return self._state.refunds[pi]
        refund = await workflow.execute_activity_method(
            StripeActivities.refund_payment,
            RefundPayment(
                order_id=self._input.order_id,
                payment_intent_id=pi,
                idempotency_key=f"order:{self._input.order_id}:refund:{pi}",
            ),
            summary=f"Refund {pi} in full",
            **policies.STRIPE_BACKGROUND,
        )
        self._state.refunds[pi] = refund
        self._count("vult_refunds_total", "Refunds issued")
        return refund

    async def _check_refund(self, pi: str) -> str:
        """charge.refunded: ask Stripe about our refund and record it as complete."""
        known = self._state.refunds.get(pi)
        if known is None:
            return f"charge.refunded for {pi}: no refund of ours to record"
        refund = await workflow.execute_activity_method(
            StripeActivities.retrieve_refund,
            known.refund_id,
            summary=f"Ask Stripe about refund {known.refund_id}",
            **policies.STRIPE_BACKGROUND,
        )
        self._state.refunds[pi] = refund
        if decisions.is_current(self._state, pi):
            await self._annotate(stripe_payment_status=_refund_status(refund))
        return f"refund {refund.refund_id} for {pi} is {refund.status}"

    async def _retrieve(self, pi: str) -> PaymentIntentSnapshot:
        # Short Stripe calls on the hot path run as local activities: no extra server
        # round trip each (docs/performance.md).
        return await workflow.execute_local_activity_method(
            StripeActivities.retrieve_payment_intent,
            pi,
            summary=f"Ask Stripe about PaymentIntent {pi}",
            **policies.STRIPE_BACKGROUND,
        )

    async def _create_payment_intent(self, attempt: int) -> PaymentIntentInfo:
        assert self._state.total is not None and self._state.currency is not None
        assert self._state.order_number is not None
        order_id = self._input.order_id
        try:
            return await workflow.execute_local_activity_method(
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
                summary=f"Create a PaymentIntent for {self._money()} (attempt {attempt})",
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

    # ---- what ops see ----------------------------------------------------------------------

    def _money(self) -> str:
        return f"{self._state.currency} {self._state.total}"

    def _describe(self) -> None:
        """The workflow's current details in the Web UI, as a plain sentence."""
        workflow.set_current_details(self._sentence())

    def _sentence(self) -> str:
        state = self._state
        payment = state.payment
        pi = payment.payment_intent_id if payment else ""
        match state.status:
            case S.Pending:
                return f"Waiting for the customer to pay {self._money()}"
            case S.PaymentProcessing:
                return f"Waiting for payment of {self._money()} ({pi})"
            case S.Failed:
                return f"Payment of {self._money()} failed ({pi}); waiting for another attempt"
            case S.Confirmed:
                return f"Paid {self._money()} ({pi}); waiting for fulfilment"
            case S.Processing:
                return "Being prepared for shipping"
            case S.Shipped:
                return "Shipped; waiting for delivery"
            case S.Delivered:
                return "Delivered"
            case S.Cancelled:
                refunds = ", ".join(f"{r.refund_id} ({r.status})" for r in state.refunds.values())
                refunded = f"; refunds: {refunds}" if refunds else ""
                return f"Cancelled: {state.cancellation_reason}{refunded}"
        return "Placing the order"

    def _index(self, *updates: SearchAttributeUpdate) -> None:
        if self._input.index_for_search and updates:
            workflow.upsert_search_attributes(list(updates))

    def _count(self, name: str, description: str) -> None:
        # The SDK's metric meter is replay-safe: nothing is counted again on replay.
        workflow.metric_meter().create_counter(name, description).add(1)

    # ---- queries --------------------------------------------------------------------------

    @workflow.query
    def state(self) -> OrderState:
        return self._state

    # ---- the one way the order row changes -------------------------------------------------

    async def _change(self, current: OrderStatus, new: OrderStatus, **fields: str | None) -> None:
        if not can_transition(current, new):
            raise _refused(f"Cannot change order status from {current} to {new}")
        await self._write(current, new, **fields)
        self._state.status = new
        self._index(sa.ORDER_STATUS.value_set(new.value))
        if new == S.Confirmed:
            self._count("vult_payments_succeeded_total", "Payments that confirmed an order")
        elif new == S.Failed:
            self._count("vult_payments_failed_total", "Payment attempts that failed")
        if new != S.PaymentProcessing and self._state.payment is not None:
            # Only a paying customer needs the client secret; keep it no longer than that.
            self._state.payment.client_secret = ""

    async def _annotate(self, **fields: str | None) -> None:
        """Record Stripe details on the row without a transition."""
        status = self._state.status
        assert status is not None
        await self._write(status, status, **fields)

    async def _write(self, current: OrderStatus, new: OrderStatus, **fields: str | None) -> None:
        try:
            await workflow.execute_local_activity_method(
                OrderDbActivities.change_order_status,
                StatusChange(
                    order_id=self._input.order_id,
                    expected=[current],
                    new_status=new,
                    at=workflow.now(),
                    **fields,
                ),
                summary=f"Record {new}" if new != current else f"Record Stripe details ({new})",
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


def _refund_status(refund: RefundInfo) -> str:
    return "refunded" if refund.status == "succeeded" else f"refund_{refund.status}"
