"""The API's commands to order workflows: start-and-place, pay, and deliver Stripe events."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.history.v1 import WorkflowTaskFailedEventAttributes
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.admission import Admission
from api.errors import (
    Accepted,
    ApiError,
    BadRequest,
    InvalidOrder,
    NotFound,
    OutcomeUnknown,
    ServiceUnavailable,
)
from vult.domain import snapshot
from vult.domain.contracts import (
    Address,
    CancelOrder,
    LatePayment,
    LineQuantity,
    OrderRequest,
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
    PaymentEvent,
    PlacedOrder,
    PricedOrder,
    RequestedLineItem,
    ResolveOrder,
    ReturnRecord,
    ReturnRequest,
    ShipOrder,
)
from vult.domain.failures import Failure
from vult.domain.order_numbers import draw_order_number
from vult.domain.pricing import Pricing, unchargeable
from vult.domain.snapshot import CatalogueProduct
from vult.domain.status import OrderStatus
from vult.domain.stripe_events import HANDLED
from vult.temporal import orphans
from vult.temporal import search_attributes as sa
from vult.wire.schemas import CreateOrderDto, PaymentIntentDto
from workflows.late_payment import LATE_EVENT_SIGNAL, late_payment_workflow_id
from workflows.order import OrderWorkflow, workflow_id_for
from workflows.order_sweep import resume_workflow_id

# Namespace for order ids derived from a client's Idempotency-Key header.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("0c6a3c1e-5d7b-4f0e-9a8e-6b5f2f1c9d40")


# How long an Idempotency-Key names its order, as Stripe keeps its keys.
KEY_LIFETIME = timedelta(hours=24)


def key_order_ids(idempotency_key: str, now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """The order ids a key can name now: this 24-hour period's, and the one before's. A
    retry within 24 hours of the first request finds its order under one of them (the
    caller reads the database for the earlier one); after that the key is free again."""
    period = int(now.timestamp() // KEY_LIFETIME.total_seconds())
    current, previous = (
        uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{idempotency_key}\n{p}") for p in (period, period - 1)
    )
    return current, previous


def order_id_for_key(
    ids: tuple[uuid.UUID, uuid.UUID], now: datetime, previous_created: datetime | None
) -> uuid.UUID:
    """The order a POST with this Idempotency-Key names at `now`, so a retry within 24
    hours is placed once. `ids`: the key's `key_order_ids` at `now`; `previous_created`:
    when the previous period's order (the second) was created, if there is one."""
    current, previous = ids
    if previous_created is not None and now - previous_created < KEY_LIFETIME:
        return previous
    return current


def order_request(dto: CreateOrderDto) -> OrderRequest:
    """The customer's request, from its wire form: built once per create."""

    def address(a: object) -> Address:
        return Address.model_validate(a, from_attributes=True)

    return OrderRequest(
        customer_email=str(dto.customer_email),
        shipping_address=address(dto.shipping_address),
        billing_address=address(dto.billing_address) if dto.billing_address else None,
        line_items=[
            RequestedLineItem(product_id=li.product_id, quantity=li.quantity, size=li.size)
            for li in dto.line_items
        ],
    )


def _translate(err: WorkflowUpdateFailedError) -> ApiError:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        if cause.type == Failure.INVALID_ORDER:
            return InvalidOrder([str(m) for m in (cause.details[0] if cause.details else [])])
        if cause.type == Failure.ORDER_NOT_FOUND:
            return NotFound("Order not found")
        if cause.type in (Failure.INVALID_TRANSITION, Failure.PAYMENT_REFUSED):
            return BadRequest(cause.message)
        if cause.type == Failure.PAYMENT_UNAVAILABLE:
            return ServiceUnavailable(cause.message)
        if cause.type == Failure.CANCEL_RECORDED:
            return Accepted(cause.message)
    return ServiceUnavailable("The order service could not complete the request")


class AlreadyPlaced(Exception):
    """The request's order was placed before and its workflow has closed: the database row
    is the order (if there is none, that earlier request placed nothing)."""

    def __init__(self, order_id: uuid.UUID) -> None:
        super().__init__(str(order_id))
        self.order_id = order_id


class WorkflowClosed(Exception):
    """The order's workflow is not running: it finished (delivered, or cancelled and past
    its grace period), and the database row tells the order's status; or it ended while the
    order could still change (terminated, say), and the order is resumed (api/commands.py)."""


def start_order(
    order_id: uuid.UUID,
    request: OrderRequest,
    fingerprint: str,
    priced: PricedOrder,
    task_queue: str,
    timing: OrderTiming,
    capture: str = "automatic",
) -> WithStartWorkflowOperation[OrderWorkflow, OrderState]:
    """The order's workflow, started already indexed for ops' searches under the number
    drawn here and the total priced from the catalogue: the activity saves that snapshot as
    is and the workflow upserts only what the saved row turns out to differ in, so a
    placement costs no extra visibility write."""
    number = draw_order_number(datetime.now(UTC))
    return WithStartWorkflowOperation(
        OrderWorkflow.run,
        OrderWorkflowInput(
            order_id=order_id,
            request=request,
            timing=timing,
            order_number=number,
            capture=capture,
            priced=priced,
            request_fingerprint=fingerprint,
        ),
        id=workflow_id_for(order_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # An order's workflow runs once: a retried request after it closed (delivered,
        # or cancelled and past its grace period) must find that order, not start a new
        # run that would adopt the row and never finish.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        # The Web UI's list and the order's page show it: the order at a glance (the
        # current details say where it stands now).
        static_summary=sa.order_summary(
            number, request.customer_email, priced.total, priced.currency
        ),
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.ORDER_NUMBER, number),
                SearchAttributePair(sa.CUSTOMER_EMAIL, request.customer_email),
                SearchAttributePair(sa.ORDER_STATUS, OrderStatus.Pending.value),
                SearchAttributePair(sa.ORDER_TOTAL, float(priced.total)),
            ]
        ),
    )


T = TypeVar("T")
_Handle = WorkflowHandle[OrderWorkflow, OrderState]


PLACE_UNKNOWN = (
    "The order service did not answer in time: the order may or may not have been placed. "
    "Send the same request again with the same Idempotency-Key to get the one order."
)
COMMAND_UNKNOWN = (
    "The order service did not answer in time: the outcome is not known yet. "
    "Read the order, or send the same request again (it is safe to repeat)."
)


# How long the API looks into an order whose workflow did not answer a command in time.
_DIAGNOSIS_SECONDS = 2.0
_NONDETERMINISM = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR


def stuck_on_build(
    described: DescribeWorkflowExecutionResponse,
    last_failure: WorkflowTaskFailedEventAttributes | None,
) -> str | None:
    """The caller's message when the order's next workflow task keeps failing because its
    history cannot run on the build the task went to (a nondeterminism error: a rollback
    past a path the order took), or None."""
    if not described.HasField("pending_workflow_task"):
        return None
    if described.pending_workflow_task.attempt < 2 or last_failure is None:
        return None
    if (
        last_failure.cause
        != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
    ):
        return None
    build = described.workflow_execution_info.versioning_info.deployment_version.build_id
    last = f" (it last ran on {build})" if build else ""
    return (
        f"The order's workflow cannot run on the build that is current now{last}: its history "
        "took a path this build does not know (a deploy rolled back past a change the order "
        "already took), so its next step fails and the command was not carried out. Make a "
        "build that can run it current again, or roll forward, then send the command again "
        "(it is safe to repeat)."
    )


class OrderCommands:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        timing: OrderTiming,
        pricing: Pricing,
        deadline: float,
        owner: str = "",
        capture: str = "automatic",
        admission: Admission | None = None,
    ) -> None:
        self._capture = capture  # PAYMENT_CAPTURE, given to each order placed
        # How many commands may be in flight at once (api/admission.py); None: no limit.
        self._admission = admission
        self._deadline = deadline
        self._owner = owner  # this deployment's owner marker (STRIPE_OWNER)
        self._client = client
        self._task_queue = task_queue
        self._timing = timing
        self._pricing = pricing

    def price(
        self, request: OrderRequest, products: Mapping[uuid.UUID, CatalogueProduct]
    ) -> PricedOrder:
        """The order's one snapshot and quote; InvalidOrder when no payment could take it.
        `products`: the catalogue's entry for every product of the request."""
        priced = snapshot.price(request.line_items, products, self._pricing)
        if (problem := unchargeable(priced.totals(), self._pricing)) is not None:
            raise InvalidOrder([problem])
        return priced

    async def place(
        self, order_id: uuid.UUID, request: OrderRequest, fingerprint: str, priced: PricedOrder
    ) -> PlacedOrder:
        """Start the order's workflow and place it: answers once its row exists."""
        start = start_order(
            order_id,
            request,
            fingerprint,
            priced,
            self._task_queue,
            self._timing,
            capture=self._capture,
        )
        try:
            async with self._admitted(new_order=True), asyncio.timeout(self._deadline):
                return await self._client.execute_update_with_start_workflow(
                    OrderWorkflow.place, start_workflow_operation=start
                )
        except WorkflowUpdateFailedError as err:
            raise _translate(err) from err
        except WorkflowAlreadyStartedError as err:
            # The operation holds the same error for its handle: take it, or asyncio
            # reports it as never retrieved.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await start.workflow_handle()
            raise AlreadyPlaced(order_id) from err
        except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            raise OutcomeUnknown(PLACE_UNKNOWN) from err

    async def request_payment(self, order_id: uuid.UUID) -> PaymentIntentDto:
        intent = await self._update(
            order_id, lambda h: h.execute_update(OrderWorkflow.request_payment)
        )
        return PaymentIntentDto(
            client_secret=intent.client_secret,
            payment_intent_id=intent.payment_intent_id,
            amount=intent.amount,
            currency=intent.currency,
        )

    async def cancel(self, order_id: uuid.UUID, reason: str) -> None:
        command = CancelOrder(reason=reason)
        await self._update(order_id, lambda h: h.execute_update(OrderWorkflow.cancel, command))

    async def start_processing(self, order_id: uuid.UUID) -> None:
        await self._update(order_id, lambda h: h.execute_update(OrderWorkflow.start_processing))

    async def ship(
        self,
        order_id: uuid.UUID,
        carrier: str,
        tracking_number: str,
        lines: list[LineQuantity] | None = None,
    ) -> None:
        shipment = ShipOrder(carrier=carrier, tracking_number=tracking_number, line_items=lines)
        await self._update(order_id, lambda h: h.execute_update(OrderWorkflow.ship, shipment))

    async def take_return(self, order_id: uuid.UUID, request: ReturnRequest) -> ReturnRecord:
        return await self._update(
            order_id, lambda h: h.execute_update(OrderWorkflow.take_return, request)
        )

    @property
    def return_window(self) -> timedelta:
        return self._timing.return_window

    async def retry(self, order_id: uuid.UUID) -> None:
        await self._update(order_id, lambda h: h.execute_update(OrderWorkflow.retry))

    async def resolve(self, order_id: uuid.UUID, note: str) -> None:
        command = ResolveOrder(note=note)
        await self._update(order_id, lambda h: h.execute_update(OrderWorkflow.resolve, command))

    async def started_at(self, order_id: uuid.UUID) -> datetime | None:
        """When the order's workflow started, or None if it never did: the point at which
        an order exists, before its row is committed."""
        handle = self._client.get_workflow_handle(workflow_id_for(order_id))
        try:
            async with asyncio.timeout(self._deadline):
                return (await handle.describe()).start_time
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise OutcomeUnknown(PLACE_UNKNOWN) from err
        except TimeoutError as err:
            raise OutcomeUnknown(PLACE_UNKNOWN) from err

    async def deliver(self, order_id: uuid.UUID) -> None:
        await self._update(order_id, lambda h: h.execute_update(OrderWorkflow.deliver))

    async def _update(self, order_id: uuid.UUID, send: Callable[[_Handle], Awaitable[T]]) -> T:
        """`send` the update to the order's workflow; its refusal as the API's error."""
        handle: _Handle = self._client.get_workflow_handle_for(
            OrderWorkflow.run, workflow_id_for(order_id)
        )
        try:
            async with self._admitted(), asyncio.timeout(self._deadline):
                return await send(handle)
        except WorkflowUpdateFailedError as err:
            raise _translate(err) from err
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            # The SDK turns our deadline's cancellation (or the server's own timeout of the
            # update call) into its own error: either way nobody knows the outcome yet.
            raise OutcomeUnknown(await self._why_no_answer(handle)) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowClosed(str(order_id)) from err
            raise OutcomeUnknown(COMMAND_UNKNOWN) from err

    def refuse_early(self, *, new_order: bool = False) -> None:
        """Overloaded at once, before the request reads anything, when admission is full
        and has a queue (api/admission.py)."""
        if self._admission is not None:
            self._admission.refuse_early(new_order=new_order)

    def _admitted(self, *, new_order: bool = False) -> AbstractAsyncContextManager[None]:
        """A place for one command (refused at once, Overloaded, when none frees up); a
        new order only one of the places not kept for orders already placed."""
        if self._admission is None:
            return nullcontext()
        return self._admission.slot(new_order=new_order)

    async def _why_no_answer(self, handle: _Handle) -> str:
        """What the caller is told when the order's workflow did not answer in time: that it
        cannot run on the current build, when its next task keeps failing (a rollback past a
        path it took), else that the outcome is not known yet."""
        try:
            async with asyncio.timeout(_DIAGNOSIS_SECONDS):
                described = (await handle.describe()).raw_description
                failed = None
                if described.pending_workflow_task.attempt >= 2:
                    # The first failure of a run of them is in the history (not the retries).
                    async for event in handle.fetch_history_events():
                        if event.HasField("workflow_task_failed_event_attributes"):
                            failed = event.workflow_task_failed_event_attributes
        except Exception:  # noqa: BLE001 - only a better message was at stake: the 503 stands
            return COMMAND_UNKNOWN
        return stuck_on_build(described, failed) or COMMAND_UNKNOWN

    async def deliver_payment_event(self, order_id: uuid.UUID, event: PaymentEvent) -> None:
        """Signal the order's workflow; WorkflowClosed when it has closed or never ran (the
        route then resumes the order, or hands the event to the after-close workflow)."""
        handle = self._client.get_workflow_handle(workflow_id_for(order_id))
        try:
            async with asyncio.timeout(self._deadline):
                await handle.signal(OrderWorkflow.payment_event, event)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowClosed(str(order_id)) from err
            raise ServiceUnavailable("The order service is unavailable") from err
        except TimeoutError as err:
            # 503: Stripe delivers the event again later.
            raise ServiceUnavailable("The order service is unavailable") from err

    async def settle_late(self, order_id: uuid.UUID, event: PaymentEvent) -> None:
        """The event of an order whose workflow has closed goes to the PaymentIntent's
        after-close workflow, which refunds money that pays no order, cancels what could
        still be paid, and records refunds and disputes (flagging what needs a person):
        nothing is acknowledged and then dropped. A second event while it runs joins it;
        one after it closed starts it again (it acts on what Stripe says then, and refunds
        at most once). The event's type goes with it as a signal, so one that joins a run
        under way is handled too (a dispute while a payment's run waits)."""
        if event.event_type not in HANDLED:
            return
        pi = event.payment_intent_id
        late = LatePayment(
            payment_intent_id=pi, order_id=order_id, event_type=event.event_type, owner=self._owner
        )
        await self._available(
            self._join(
                "LatePaymentWorkflow",
                late,
                late_payment_workflow_id(pi),
                signal=(LATE_EVENT_SIGNAL, event.event_type),
            )
        )

    async def how_it_ended(self, order_id: uuid.UUID) -> str | None:
        """How the order's workflow ended if not normally (TERMINATED, FAILED, ...,
        NOT_STARTED); None while it runs or once it completed."""
        return await self._available(orphans.how_it_ended(self._client, order_id))

    async def resume(self, order_id: uuid.UUID) -> None:
        """Resume the order's workflow now, rather than at the next sweep: the worker's
        ResumeOrderWorkflow does it (a second ask while it runs joins it)."""
        await self._available(
            self._join("ResumeOrderWorkflow", order_id, resume_workflow_id(order_id))
        )

    async def _join(
        self, workflow: str, arg: object, workflow_id: str, signal: tuple[str, str] | None = None
    ) -> None:
        """Start the workflow, or join the one of that id that runs (again after it closed);
        with `signal` (name, argument), it is sent to the run either way (signal-with-start)."""
        await self._client.start_workflow(
            workflow,
            arg,
            id=workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            start_signal=signal[0] if signal else None,
            start_signal_args=[signal[1]] if signal else [],
        )

    async def _available(self, call: Awaitable[T]) -> T:
        """`call` within the deadline; Temporal away or slow: 503 (the caller may retry)."""
        try:
            async with asyncio.timeout(self._deadline):
                return await call
        except (TimeoutError, RPCError) as err:
            raise ServiceUnavailable("The order service is unavailable") from err
