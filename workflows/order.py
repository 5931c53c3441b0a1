"""OrderWorkflow: one durable workflow per order, from placement to delivery or cancellation.

The workflow holds the decisions (with the pure rules in workflows/decisions.py): which
transitions are allowed, what a Stripe answer means, when a timer fires. Activities do the
writes and calls, reached through workflows/steps.py by name. Every status write names the
status it expects to find, so a replayed or late step can never move an order backwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from vult.domain.contracts import (
    CancelOrder,
    CreateOrderRow,
    OrderState,
    OrderWorkflowInput,
    PaymentEvent,
    PaymentIntentInfo,
    PlacedOrder,
    ResolveOrder,
    ReturnRecord,
    ReturnRequest,
    ShipOrder,
)
from vult.domain.failures import Failure
from vult.domain.order_events import OrderEventType
from vult.domain.status import CANCELLABLE, Command, OrderStatus
from workflows import attention, decisions, guards, ops_view, patches, steps
from workflows import declared_activities as declared
from workflows.decisions import Timer
from workflows.order_actions import (
    cancellation,
    payment,
    refunds,
    resolution,
    row,
    shipping,
    timers,
)
from workflows.order_actions import events as order_events
from workflows.order_actions.context import OrderContext
from workflows.steps import OrderRefused, refused
from workflows.timer import UpdatableTimer

S = OrderStatus
# Stripe may deliver an event more than once; remembering the last few hundred ids is
# plenty, as each order sees a handful of events.
_SEEN_EVENTS_KEPT = 200


def workflow_id_for(order_id: uuid.UUID) -> str:
    """Ops go from an order to its history in one step: the id is derived from the order's."""
    return f"order-{order_id}"


# Versioning behaviour: AUTO_UPGRADE, the worker deployment's default
# (vult/temporal/deployments.py; declared there, so that the tests' unversioned workers can
# run this class too). An order lives for days to weeks (a parked one until ops act), too
# long to keep every old build running for it; it moves to each new current build, so every
# command-changing edit here is guarded by `workflow.patched` and proven by the replay
# corpus (docs/architecture.md, "Changing workflow code").
@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderWorkflowInput) -> None:
        self._input = input
        self._timing = input.timing
        self._state = input.state or OrderState()
        self._rejection: list[str] | None = None
        # Events the previous run had received but not handled come first.
        self._events: list[PaymentEvent] = self._state.queued_events
        self._state.queued_events = []
        self._wake = False  # set by handlers whose change moves a timer
        self._timer = UpdatableTimer()
        self._ctx = OrderContext(
            input.order_id,
            self._state,
            self._timing,
            input.index_for_search,
            input.capture,
            # Asked before anything else: a handler in the run's first task may record a fact.
            emits_events=workflow.patched(patches.ORDER_EVENTS),
        )
        if self._ctx.emits_events:
            order_events.begin(self._ctx)
        # Updates, events and timers interleave at every await; one lock keeps each
        # decision-and-write atomic with respect to the others.
        self._lock = asyncio.Lock()

    # ---- the main line ----------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderState:
        # A Temporal cancellation request (the Web UI's button, `temporal workflow cancel`)
        # would end the order behind its back while money may still move: refused at
        # whichever await it reaches (a wait for the lock, for handlers to finish, a step),
        # and the loop carries on from the state, which holds everything.
        while True:
            try:
                return await self._run(input)
            except asyncio.CancelledError:
                attention.refuse_cancellation()

    async def _run(self, input: OrderWorkflowInput) -> OrderState:
        if self._state.status is None:
            if self._rejection is None:
                await self._create_order()
            if self._state.status is None:  # refused at placement
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._state

        while not self._finished():
            try:
                await self._wait_for_something()
            except asyncio.CancelledError:
                attention.refuse_cancellation()
                continue
            retry_at = self._state.ops.retry_at
            if retry_at is not None and retry_at <= workflow.now():
                self._unpark()
            if self._catch_up_due():
                async with self._lock:
                    if self._catch_up_due():
                        await self._attempt("catching up after the resume", Timer.CATCH_UP)
            while self._events:
                async with self._lock:
                    # Taken off the queue only once the lock is held: nothing that stops
                    # the wait for it (a cancellation request) can lose the event.
                    event = self._events.pop(0)
                    await self._attempt(f"{event.event_type} {event.event_id}", event)
            for due_at, timer in decisions.deadlines(self._state, self._timing):
                if due_at <= workflow.now() and self._state.ops.attention is None:
                    async with self._lock:
                        await self._attempt(f"the {timer} timer", timer)
            if (
                self._state.fulfilment.pending_shipment is not None
                and self._state.ops.attention is None
            ):
                async with self._lock:
                    shipment = self._state.fulfilment.pending_shipment
                    if shipment is not None and self._state.status == S.Processing:
                        await self._attempt("the shipment", shipment)
            if self._cancel_due():
                async with self._lock:
                    # The customer's cancel may have finished it while this waited.
                    reason = self._state.cancelling.pending
                    if reason is not None and self._cancel_due():
                        await self._attempt("the cancellation", CancelOrder(reason=reason))
            await self._tell_attention()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # Signals that came while handlers finished go along, not lost.
                self._state.queued_events = self._events
                workflow.continue_as_new(input.model_copy(update={"state": self._state}))

        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    def _catch_up_due(self) -> bool:
        return self._state.catching_up and self._state.ops.attention is None

    def _cancel_due(self) -> bool:
        """A cancellation to finish, not parked, and not waiting for its next ask."""
        state = self._state
        ask_at = state.cancelling.next_ask_at
        return (
            state.cancelling.pending is not None
            and state.ops.attention is None
            and (ask_at is None or ask_at <= workflow.now())
        )

    def _finished(self) -> bool:
        if self._state.catching_up:
            return False  # resumed: nothing is known of Stripe's side yet
        if not decisions.finished(self._state, self._timing, workflow.now()):
            return False
        # A refund pending at Stripe or a dispute open: money may still move.
        return not decisions.money_in_flight(self._state)

    async def _attempt(
        self, what: str, work: PaymentEvent | Timer | CancelOrder | ShipOrder
    ) -> None:
        """Handle an event, a timer or a pending cancellation. What no retry could fix
        parks the order for ops instead of failing the workflow: money may still have to
        move for it."""
        try:
            if isinstance(work, Timer):
                await timers.on_timer(self._ctx, work)
            elif isinstance(work, CancelOrder):
                await self._finish_cancel(work.reason)
            elif isinstance(work, ShipOrder):
                await shipping.ship(self._ctx, work)
            else:
                self._state.payments.last_note = await payment.on_event(self._ctx, work)
        except ApplicationError as err:
            if err.type == Failure.CANCEL_RECORDED:
                self._state.payments.last_note = err.message  # asked again later
                return
            self._park(what, err, work if isinstance(work, PaymentEvent) else None)
        except (FailureError, asyncio.CancelledError) as err:
            if isinstance(err, asyncio.CancelledError):
                attention.refuse_cancellation()
            self._park(what, err, work if isinstance(work, PaymentEvent) else None)

    async def _tell_attention(self) -> None:
        """An order parked for ops says so (order.needs_attention), once per parking; a
        write that fails (the database may be why it parked) is tried at the next wake."""
        if self._state.status is None or self._state.ops.attention is None:
            return
        async with self._lock:
            told = order_events.needs_attention(self._ctx)
            if not told:
                return
            try:
                await row.annotate(self._ctx, told)
            except (FailureError, ApplicationError) as err:
                workflow.logger.warning("order.needs_attention not written yet: %s", err)

    def _park(self, what: str, err: BaseException, event: PaymentEvent | None = None) -> None:
        indexed = self._input.index_for_search
        attention.park(self._state, self._timing, indexed, what, err, event)
        if self._ctx.emits_events:
            self._wake = True  # the main loop tells it (order.needs_attention)

    def _unpark(self) -> None:
        self._events[:0] = attention.unpark(self._state, self._input.index_for_search)
        self._wake = True

    async def _wait_for_something(self) -> None:
        """Sleep until an event, a handler's change, or the earliest deadline."""
        ops_view.describe(self._state)
        self._wake = False
        if self._catch_up_due():
            return
        upcoming = decisions.deadlines(self._state, self._timing)
        due = upcoming[0][0] if upcoming else None
        if due is not None and due <= workflow.now():
            return
        self._timer.set(due, str(upcoming[0][1]) if upcoming else None)
        await workflow.wait_condition(lambda: bool(self._events) or self._wake or self._timer.fired)

    async def _create_order(self) -> None:
        """Write the order's row. A refusal (an unknown product) is the customer's to fix;
        any other failure past the step's retries (a database failover) parks the order:
        it is tried again every ATTENTION_RETRY or on ops' `retry`, never failing the
        workflow, so the Idempotency-Key stays usable and a retry returns this order."""
        assert self._input.request is not None  # only a resumed run has none, and a state
        request = CreateOrderRow(
            order_id=self._input.order_id,
            created_at=workflow.now(),
            request=self._input.request,
            order_number=self._input.order_number,
            priced=self._input.priced,
            request_fingerprint=self._input.request_fingerprint,
            events=order_events.of(self._ctx, OrderEventType.PLACED),
        )
        while True:
            try:
                created = await steps.create_order_row(request)
                order_events.written(self._ctx, request.events)
                break
            except OrderRefused as refusal:
                self._rejection = refusal.problems
                ops_view.unindex_refused(self._input.index_for_search)
                return
            except FailureError as err:
                self._park("placing the order", err)
                ops_view.describe(self._state)
                try:
                    await workflow.wait_condition(
                        lambda: self._state.ops.attention is None,
                        timeout=self._timing.attention_retry,
                    )
                except TimeoutError:
                    self._unpark()
        if self._state.ops.attention is not None:  # a retry by ops raced the success
            self._unpark()
        self._state.status = created.status
        self._state.order_number = created.order_number
        self._state.total = created.total
        self._state.currency = created.currency
        self._state.created_at = request.created_at
        ops_view.index_placed(
            self._input.index_for_search, self._state, request.request.customer_email
        )
        ops_view.count("vult_orders_created_total", "Orders placed")
        ops_view.describe(self._state)

    async def _caught_up(self) -> None:
        """A resumed run's state came from the row: a command waits until the run has read
        Stripe's side (its first step), so it is judged on where the order stands now."""
        if not self._state.catching_up:
            return
        await workflow.wait_condition(
            lambda: not self._state.catching_up or self._state.ops.attention is not None
        )
        if self._state.catching_up:
            raise ApplicationError(
                "The order is being resumed and Stripe could not be read yet; try again shortly",
                type=Failure.PAYMENT_UNAVAILABLE,
            )

    def _resuming(self) -> bool:
        """Validators judge nothing on a resumed run's state before it has caught up: the
        handler waits for that, then checks."""
        return self._state.catching_up

    async def _until_created(self) -> None:
        await workflow.wait_condition(
            lambda: self._state.status is not None or self._rejection is not None
        )
        self._require_placed()

    def _require_placed(self) -> None:
        """An order that was refused at placement does not exist for any command."""
        if self._rejection is not None:
            raise ApplicationError("Order not found", type=Failure.ORDER_NOT_FOUND)

    def _check(self, guard: Callable[[OrderState], None]) -> None:
        self._require_placed()
        guard(self._state)

    # ---- updates: the customer's and ops' commands ---------------------------------------

    @workflow.update
    async def place(self) -> PlacedOrder:
        """Sent with the start (update-with-start): answers once the order row exists."""
        await workflow.wait_condition(
            lambda: self._state.status is not None or self._rejection is not None
        )
        if self._rejection is not None:
            raise ApplicationError(
                "The order is not valid", self._rejection, type=Failure.INVALID_ORDER
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
        await self._accepted()
        await self._until_created()
        await self._caught_up()
        async with self._lock:
            self._check(guards.payable)
            status = self._state.status
            assert status is not None
            if status == S.PaymentProcessing and self._state.payments.current is not None:
                return self._state.payments.current
            if status == S.Failed:
                # The declined PaymentIntent must not stay payable beside the new one.
                await payment.close_previous_attempt(self._ctx)
                if self._state.status != S.Failed:  # it was paid after all
                    self._check(guards.payable)
            attempt = self._state.payments.attempt + 1
            intent = await payment.create_payment_intent(self._ctx, attempt)
            self._state.payments.attempt = attempt
            self._state.payments.intent_ids.append(intent.payment_intent_id)
            await row.change(
                self._ctx, status, S.PaymentProcessing, payment_intent_id=intent.payment_intent_id
            )
            self._state.payments.current = intent
            self._state.payments.reconcile_attempts = 0
            self._state.payments.next_reconcile_at = workflow.now() + self._timing.reconcile_after
            self._wake = True
            return intent

    @request_payment.validator
    def _validate_request_payment(self) -> None:
        if not self._resuming():
            self._check(guards.payable)

    @workflow.update
    async def cancel(self, command: CancelOrder) -> None:
        """Cancel: release or refund any payment first, then record Cancelled."""
        await self._accepted()
        await self._until_created()
        await self._caught_up()
        async with self._lock:
            if self._state.status == S.Cancelled:
                return  # cancel is safe to send again: nothing more is done
            self._check(guards.cancellable)
            self._state.cancelling.pending = command.reason
            try:
                await self._finish_cancel(command.reason, interactive=True)
            except ApplicationError as err:
                if err.type == Failure.CANCEL_RECORDED:
                    self._wake = True  # the timer for the next ask
                    raise
                if err.type != Failure.DISPUTED:
                    raise self._parked_cancel(err) from err
                # Nothing is refunded while a dispute is open: refused, nothing recorded.
                self._state.cancelling.pending = None
                raise refused(
                    "The order's payment is disputed: it cannot be cancelled and refunded "
                    "until the dispute is closed"
                ) from err
            except FailureError as err:
                raise self._parked_cancel(err) from err
            self._wake = True

    async def _accepted(self) -> None:
        """Before an update acts: the workflow task that accepted it ends here, so the server
        records the acceptance before any local activity of the update writes the row or
        calls Stripe. Without it, a server that died before recording that task forgets the
        update while its writes stand (the caller saw an error and may never send it again)."""
        if workflow.patched(patches.ACCEPTED_BEFORE_ACTING):
            # A regular activity, not a timer: the server fires timers to the second (a
            # 1 ms timer answered each command about a second late); the worker runs this
            # at once (eagerly, where the server allows it).
            update = workflow.current_update_info()
            try:
                await declared.accept_update(update.name if update is not None else "")
            except ActivityError:
                pass  # timed out unrun (the worker's slots all held): accepted all the same

    def _parked_cancel(self, err: FailureError) -> ApplicationError:
        # Stripe or the database could not complete it now: the workflow will (every
        # ATTENTION_RETRY, or on the retry update); the caller hears so.
        self._park("the cancellation", err)
        return ApplicationError(
            "The cancellation could not be completed now; it will be completed "
            "automatically (you can also ask again)",
            type=Failure.PAYMENT_UNAVAILABLE,
        )

    async def _finish_cancel(self, reason: str, *, interactive: bool = False) -> None:
        if self._state.status in CANCELLABLE:
            await cancellation.cancel(self._ctx, reason, interactive=interactive)
        self._state.cancelling.pending = None

    @cancel.validator
    def _validate_cancel(self, command: CancelOrder) -> None:
        if not command.reason.strip() or len(command.reason) > 500:
            raise refused("A cancellation reason of 1 to 500 characters is required")
        if self._state.status == S.Cancelled or self._resuming():
            return  # asked again: it is cancelled, or judged once caught up (the handler)
        self._check(guards.cancellable)
        # Not refused here for a dispute the state knows of: its closing event may be late or
        # lost. The handler reads the charge back and refuses (400) only if it is still open.

    @workflow.update
    async def start_processing(self) -> None:
        """Ops: Confirmed -> Processing (fulfilment has begun)."""
        await self._accepted()
        await self._caught_up()
        async with self._lock:
            guards.require(self._state, Command.START_PROCESSING)
            await self._read_back_payment()
            guards.stripe_keeps_payment(self._state)
            await row.change(self._ctx, S.Confirmed, S.Processing)

    async def _read_back_payment(self) -> None:
        """Before goods go out: Stripe's amounts now (a refund in the Dashboard, a dispute
        opened or closed whose event is still on its way or lost), so what
        stripe_keeps_payment checks is the truth, not the last event's word."""
        paying = self._state.payments.current
        if paying is not None:
            await refunds.learn(self._ctx, paying.payment_intent_id)

    @start_processing.validator
    def _validate_start_processing(self) -> None:
        if self._resuming():
            return
        guards.require(self._state, Command.START_PROCESSING)
        guards.keeps_payment(self._state)

    @workflow.update
    async def ship(self, shipment: ShipOrder) -> None:
        """Ops: Processing -> Shipped, with the carrier and tracking number, and the lines
        shipped (all, when none are named). Capture at shipment captures the shipped share
        first; a capture Stripe refuses leaves the order Processing, parked for ops (their
        `retry` captures again and ships)."""
        await self._accepted()
        await self._caught_up()
        async with self._lock:
            guards.require(self._state, Command.SHIP)
            guards.no_shipment_waiting(self._state)
            await self._read_back_payment()
            guards.stripe_keeps_payment(self._state)
            try:
                await shipping.ship(self._ctx, shipment)
            except ApplicationError as err:
                if err.type != Failure.PAYMENT_REFUSED:
                    raise
                self._state.fulfilment.pending_shipment = shipment
                self._park("capturing the payment at shipment", err)
                self._state.ops.retry_at = None  # a refused capture is ops' to retry or resolve
                raise refused(
                    f"The payment could not be captured: {err.message}. The order is not "
                    "shipped; it stays Processing and needs attention"
                ) from err

    @ship.validator
    def _validate_ship(self, shipment: ShipOrder) -> None:
        if not (0 < len(shipment.carrier.strip()) <= 100):
            raise refused("A carrier of 1 to 100 characters is required")
        if not (0 < len(shipment.tracking_number.strip()) <= 100):
            raise refused("A tracking number of 1 to 100 characters is required")
        guards.valid_lines(shipment.line_items)
        if self._resuming():
            return
        guards.require(self._state, Command.SHIP)
        guards.no_shipment_waiting(self._state)

    @workflow.update
    async def take_return(self, request: ReturnRequest) -> ReturnRecord:
        """Ops: refund some shipped lines, or an amount, of a shipped or delivered order
        (with a reason); once per Idempotency-Key, never more than is still held."""
        await self._accepted()
        await self._caught_up()
        async with self._lock:
            guards.returnable(self._state, request)
            return await shipping.take_return(self._ctx, request)

    @take_return.validator
    def _validate_take_return(self, request: ReturnRequest) -> None:
        if not self._resuming():
            guards.returnable(self._state, request)

    @workflow.update
    async def deliver(self) -> None:
        """Ops: Shipped -> Delivered. The workflow then completes."""
        await self._accepted()
        await self._caught_up()
        async with self._lock:
            guards.require(self._state, Command.DELIVER)
            await row.change(self._ctx, S.Shipped, S.Delivered)
            self._state.fulfilment.delivered_at = workflow.now()  # open for returns until then
            self._wake = True

    @deliver.validator
    def _validate_deliver(self) -> None:
        if not self._resuming():
            guards.require(self._state, Command.DELIVER)

    @workflow.update
    async def retry(self) -> None:
        """Ops: try the order's stuck step again now (it needs attention); a refund that
        failed at Stripe is made again."""
        await self._accepted()
        async with self._lock:
            # Checked again once accepted: another retry accepted meanwhile may have unparked
            # the order and started the refund; asking again then would count as ops'
            # consent to a refund after its next failure (only ops may give that).
            self._validate_retry()
            self._state.money.retry_asked = decisions.refunds_owed(self._state)
            self._unpark()

    @retry.validator
    def _validate_retry(self) -> None:
        if self._state.ops.attention is None:
            raise refused("Nothing to retry: the order needs no attention")

    @workflow.update
    async def resolve(self, command: ResolveOrder) -> None:
        """Ops: the problem was handled outside the service (the customer paid back by
        bank transfer, a dispute answered in the Dashboard). Stops the stuck step's
        retries, clears the flag, and keeps the note in the history, the state and the
        row. A pending cancellation is then recorded without moving money."""
        await self._accepted()
        async with self._lock:
            self._require_resolvable()
            await resolution.resolve(self._ctx, command.note.strip())
            self._wake = True

    @resolve.validator
    def _validate_resolve(self, command: ResolveOrder) -> None:
        if not (0 < len(command.note.strip()) <= 1000):
            raise refused("A note of 1 to 1000 characters is required: what was done, by whom")
        self._require_resolvable()

    def _require_resolvable(self) -> None:
        self._require_placed()
        if not attention.needs_attention(self._state):
            raise refused("Nothing to resolve: the order needs no attention")

    # ---- signals and timers ----------------------------------------------------------------

    @workflow.signal
    def payment_event(self, event: PaymentEvent) -> None:
        """Stripe's word, verified by the API."""
        seen = self._state.seen_event_ids
        if event.event_id in seen:
            # A redelivery still grows the history: the main loop looks at the
            # continue-as-new suggestion for it too, or a storm of them never would.
            self._wake = True
            return
        seen.append(event.event_id)
        del seen[:-_SEEN_EVENTS_KEPT]
        self._events.append(event)

    @workflow.query
    def state(self) -> OrderState:
        return self._state
