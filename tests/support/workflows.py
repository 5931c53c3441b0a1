"""OrderWorkflow on a real dev server with its activities replaced by same-named stand-ins:
the stand-in Backend, the Harness that places and pays orders, the stand-in worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from api.order_commands import start_order
from vult.domain.contracts import (
    Address,
    CancelPaymentIntent,
    CapturePayment,
    ChargeFacts,
    CreatedOrderRow,
    CreateOrderRow,
    CreatePaymentIntent,
    DisputeInfo,
    LineSnapshot,
    OrderLineInfo,
    OrderLines,
    OrderPayment,
    OrderRequest,
    OrderState,
    OrderTiming,
    PaymentEvent,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
    PlacedOrder,
    PricedOrder,
    RecordPayment,
    RecordReturn,
    RefundInfo,
    RefundPayment,
    RequestedLineItem,
    StatusChange,
    WriteStamp,
)
from vult.domain.failures import Failure
from vult.domain.status import OrderStatus
from vult.temporal.sandbox import sandbox_runner
from workflows.order import OrderWorkflow

KNOWN_PRODUCT = uuid.UUID("6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001")


STAND_IN_TOTAL = Decimal("108.00")  # what the stand-in database makes of every order


DECLINED = "Your card was declined."


RETURNS = timedelta(seconds=2)


@dataclass
class FakeStripeIntent:
    id: str
    amount: int
    currency: str
    order_id: str = ""
    status: str = "requires_payment_method"
    error: str | None = None
    payment_method: str | None = None
    captured: int | None = None  # capture at shipment: what was captured


@dataclass
class Backend:
    """Stand-ins for PostgreSQL and Stripe that record what the workflow asked of them."""

    rows: dict[uuid.UUID, OrderStatus] = field(default_factory=dict)
    fields: dict[uuid.UUID, dict[str, str]] = field(default_factory=dict)
    changes: list[tuple[OrderStatus, OrderStatus]] = field(default_factory=list)
    refunds: dict[str, str] = field(default_factory=dict)  # idempotency key -> PaymentIntent
    cancel_calls: int = 0
    intents: dict[str, FakeStripeIntent] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    create_calls: int = 0
    retrieve_calls: int = 0
    refuse_payment: str | None = None
    refuse_refund: str | None = None
    refuse_refund_as: str = Failure.PAYMENT_REFUSED  # the refusal's type
    refund_calls: int = 0
    # Set: refunds wait for it (a slow Stripe), so a handler holds the lock meanwhile.
    refunds_held: asyncio.Event | None = None
    # Set: reads of a PaymentIntent wait for it (a resumed run's catch-up, say).
    retrieves_held: asyncio.Event | None = None
    # The next read of each of these PaymentIntents fails past its retries.
    failing_retrieves: list[str] = field(default_factory=list)
    # The next this many row inserts fail past their retries (a database failover).
    failing_creates: int = 0
    create_row_calls: int = 0
    # Refuse (as PostgreSQL would refuse bad data) a status write to this status.
    refuse_status: OrderStatus | None = None
    # Refund id -> the status Stripe reports for it later (default: succeeded).
    refund_outcomes: dict[str, str] = field(default_factory=dict)
    # Idempotency key -> the first answer, replayed as Stripe does for 24 hours.
    cancel_answers: dict[str, PaymentIntentSnapshot] = field(default_factory=dict)
    # Money moved at "Stripe" by others: PaymentIntent -> refunds someone else made, and
    # the dispute of its charge (set by a test).
    outside_refunds: dict[str, list[RefundInfo]] = field(default_factory=dict)
    disputes: dict[str, DisputeInfo] = field(default_factory=dict)
    refund_amounts: dict[str, int] = field(default_factory=dict)  # key -> amount asked
    recorded: list[RecordPayment] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # updates accepted before acting
    capture_methods: dict[str, str] = field(default_factory=dict)  # PaymentIntent -> method
    reauthorization: str = "requires_capture"  # what a re-authorization leaves it in
    returns: list[RecordReturn] = field(default_factory=list)
    settled: dict[uuid.UUID, list[str]] = field(default_factory=dict)  # resolved refund ids
    # The stamp of the workflow's write that last changed each row (orders.workflow_*).
    stamps: dict[uuid.UUID, WriteStamp] = field(default_factory=dict)

    @activity.defn(name="create_order_row")
    async def create_order_row(self, req: CreateOrderRow) -> CreatedOrderRow:
        self.create_row_calls += 1
        if self.failing_creates > 0:
            self.failing_creates -= 1
            raise ApplicationError("the database is failing over", non_retryable=True)
        bad = [li.product_id for li in req.request.line_items if li.product_id != KNOWN_PRODUCT]
        if bad:
            raise ApplicationError(
                "invalid",
                [f"Product not found: {p}" for p in bad],
                type=Failure.INVALID_ORDER,
                non_retryable=True,
            )
        self.rows[req.order_id] = OrderStatus.Pending
        return CreatedOrderRow(
            order_id=req.order_id,
            order_number=req.order_number or "VLT-20260101-123456",
            status=OrderStatus.Pending,
            total=STAND_IN_TOTAL,
            currency="USD",
        )

    @activity.defn(name="change_order_status")
    async def change_order_status(self, change: StatusChange) -> None:
        if change.new_status == self.refuse_status:
            raise ApplicationError("refused", type=Failure.STATUS_REFUSED, non_retryable=True)
        current = self.rows[change.order_id]
        if current not in change.expected and not self._lost_task_wrote(change):
            raise ApplicationError("conflict", type=Failure.STATUS_CONFLICT, non_retryable=True)
        self.rows[change.order_id] = change.new_status
        if change.stamp is not None:
            self.stamps[change.order_id] = change.stamp
        if change.new_status != current:
            self.changes.append((current, change.new_status))
        if change.settled_refund_ids:
            self.settled.setdefault(change.order_id, []).extend(change.settled_refund_ids)
        row = self.fields.setdefault(change.order_id, {})
        for name in (
            "cancellation_reason",
            "stripe_refund_id",
            "stripe_payment_status",
            "shipping_carrier",
            "tracking_number",
            "payment_error_message",
            "amount_refunded",
            "dispute_status",
            "resolution_note",
            "resumed_at",
            "pending_cancel_reason",
            "amount_captured",
        ):
            if getattr(change, name) is not None:
                row[name] = str(getattr(change, name))

    def _lost_task_wrote(self, change: StatusChange) -> bool:
        """The row's last write is one a lost task of this chain made (orders.workflow_*)."""
        mine, there = change.stamp, self.stamps.get(change.order_id)
        return (
            mine is not None
            and there is not None
            and there.chain == mine.chain
            and there.task_began <= mine.task_began
            and there.number >= mine.number
        )

    @activity.defn(name="read_order_payment")
    async def read_order_payment(self, order_id: uuid.UUID) -> OrderPayment:
        """The row as the late-payment workflow reads it (the latest PaymentIntent made)."""
        if order_id not in self.rows:
            return OrderPayment(exists=False)
        made = [i.id for i in self.intents.values() if i.order_id == str(order_id)]
        return OrderPayment(
            exists=True,
            status=self.rows[order_id],
            payment_intent_id=made[-1] if made else None,
            settled_refund_ids=self.settled.get(order_id, []),
        )

    @activity.defn(name="create_payment_intent")
    async def create_payment_intent(self, req: CreatePaymentIntent) -> PaymentIntentInfo:
        self.create_calls += 1
        if self.refuse_payment:
            raise ApplicationError(
                self.refuse_payment, type=Failure.PAYMENT_REFUSED, non_retryable=True
            )
        pid = self.keys.setdefault(req.idempotency_key, f"pi_{len(self.keys) + 1}")
        self.intents.setdefault(
            pid, FakeStripeIntent(pid, req.amount, req.currency.lower(), str(req.order_id))
        )
        self.capture_methods[pid] = req.capture_method
        if req.payment_method is not None:  # a re-authorization, confirmed at once
            self.intents[pid].payment_method = req.payment_method
            self.intents[pid].status = self.reauthorization
            if self.reauthorization != "requires_capture":
                raise ApplicationError(
                    "Your card was declined.", type=Failure.PAYMENT_REFUSED, non_retryable=True
                )
        return PaymentIntentInfo(
            payment_intent_id=pid,
            client_secret=f"{pid}_secret",
            amount=req.amount,
            currency=req.currency.lower(),
        )

    @activity.defn(name="retrieve_payment_intent")
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentSnapshot:
        self.retrieve_calls += 1
        if self.retrieves_held is not None:
            await self.retrieves_held.wait()
        if payment_intent_id in self.failing_retrieves:
            self.failing_retrieves.remove(payment_intent_id)
            raise ApplicationError("Stripe is away", non_retryable=True)
        i = self.intents[payment_intent_id]
        return PaymentIntentSnapshot(
            payment_intent_id=i.id,
            status=i.status,
            amount=i.amount,
            amount_received=i.amount if i.status == "succeeded" else 0,
            currency=i.currency,
            last_error_message=i.error,
            order_id=i.order_id,
            payment_method=i.payment_method or "pm_card_visa",
            amount_capturable=i.amount if i.status == "requires_capture" else 0,
        )

    @activity.defn(name="cancel_payment_intent")
    async def cancel_payment_intent(self, req: CancelPaymentIntent) -> PaymentIntentSnapshot:
        self.cancel_calls += 1
        if req.idempotency_key in self.cancel_answers:
            return self.cancel_answers[req.idempotency_key]
        intent = self.intents[req.payment_intent_id]
        if intent.status not in ("succeeded", "processing"):
            intent.status = "canceled"
        answer = await self.retrieve_payment_intent(req.payment_intent_id)
        self.cancel_answers[req.idempotency_key] = answer
        return answer

    @activity.defn(name="refund_payment")
    async def refund_payment(self, req: RefundPayment) -> RefundInfo:
        self.refund_calls += 1
        if self.refunds_held is not None:
            await self.refunds_held.wait()
        if self.refuse_refund:
            raise ApplicationError(
                self.refuse_refund, type=self.refuse_refund_as, non_retryable=True
            )
        self.refunds.setdefault(req.idempotency_key, req.payment_intent_id)
        intent = self.intents[req.payment_intent_id]
        amount = intent.amount if req.amount is None else req.amount
        self.refund_amounts.setdefault(req.idempotency_key, amount)
        return RefundInfo(
            refund_id=self._refund_id(req.idempotency_key),
            status="pending",
            amount=self.refund_amounts[req.idempotency_key],
            currency=intent.currency,
            key=req.idempotency_key,
        )

    @staticmethod
    def _refund_id(key: str) -> str:
        pi = key.split(":")[3]
        again = key.rsplit(":", 1)[-1]  # ...:refund:<pi>[:<n>], or a step's [:again-<n>]
        if again.startswith("again-"):
            return f"re_{pi}_{again.replace('-', '')}"
        return f"re_{pi}_{again}" if again.isdigit() else f"re_{pi}"

    @activity.defn(name="read_charge")
    async def read_charge(self, payment_intent_id: str) -> ChargeFacts:
        intent = self.intents[payment_intent_id]
        ours = [
            RefundInfo(
                refund_id=self._refund_id(key),
                status=self.refund_outcomes.get(self._refund_id(key), "succeeded"),
                amount=self.refund_amounts.get(key, intent.amount),
                currency=intent.currency,
                key=key,
            )
            for key, pi in self.refunds.items()
            if pi == payment_intent_id
        ]
        # Newest first, as Stripe lists them (ours in the order they were made, reversed).
        listed = [*self.outside_refunds.get(payment_intent_id, []), *reversed(ours)]
        captured = intent.captured if intent.captured is not None else intent.amount
        return ChargeFacts(
            payment_intent_id=payment_intent_id,
            currency=intent.currency,
            amount_capturable=intent.amount if intent.status == "requires_capture" else 0,
            amount_captured=captured if intent.status == "succeeded" else 0,
            amount_refunded=sum(r.amount for r in listed if r.status not in ("failed", "canceled")),
            refunds=listed,
            dispute=self.disputes.get(payment_intent_id),
        )

    @activity.defn(name="capture_payment")
    async def capture_payment(self, req: CapturePayment) -> PaymentIntentSnapshot:
        intent = self.intents[req.payment_intent_id]
        if intent.status != "requires_capture":
            raise ApplicationError(
                f"cannot capture: {intent.status}", type=Failure.PAYMENT_REFUSED, non_retryable=True
            )
        intent.status, intent.captured = "succeeded", req.amount
        return await self.retrieve_payment_intent(req.payment_intent_id)

    @activity.defn(name="read_order_lines")
    async def read_order_lines(self, order_id: uuid.UUID) -> OrderLines:
        return OrderLines(
            sub_total=Decimal("100.00"),
            tax=Decimal("8.00"),
            shipping_cost=Decimal("0.00"),
            total=STAND_IN_TOTAL,
            lines=[OrderLineInfo(line_item_id="line-1", unit_price=Decimal("50.00"), quantity=2)],
        )

    @activity.defn(name="record_return")
    async def record_return(self, req: RecordReturn) -> datetime | None:
        """Once per key, as the table's key keeps it: a retry answers the first's time."""
        for earlier in self.returns:
            if (earlier.order_id, earlier.record.key) == (req.order_id, req.record.key):
                return earlier.record.at
        self.returns.append(req)
        return req.record.at

    @activity.defn(name="record_payment")
    async def record_payment(self, record: RecordPayment) -> bool:
        self.recorded.append(record)
        return record.order_id in self.rows

    @activity.defn(name="accept_update")
    async def accept_update(self, update: str) -> None:
        self.accepted.append(update)

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.create_order_row,
            self.change_order_status,
            self.accept_update,
            self.read_order_payment,
            self.create_payment_intent,
            self.retrieve_payment_intent,
            self.cancel_payment_intent,
            self.refund_payment,
            self.read_charge,
            self.record_payment,
            self.capture_payment,
            self.read_order_lines,
            self.record_return,
        ]


def order_request(product: uuid.UUID = KNOWN_PRODUCT) -> OrderRequest:
    return OrderRequest(
        customer_email="ann@example.com",
        shipping_address=Address(
            full_name="Ann Lee",
            address_line1="1 Main St",
            city="Springfield",
            state="IL",
            postal_code="62701",
            country="US",
        ),
        line_items=[RequestedLineItem(product_id=product, quantity=2)],
    )


def priced(request: OrderRequest, total: Decimal = STAND_IN_TOTAL) -> PricedOrder:
    """The API's snapshot of `request`, totalling `total` (the stand-in database saves
    its own figures whatever it is given)."""
    lines = [
        LineSnapshot(product_id=li.product_id, product_name="Runner", unit_price=total, quantity=1)
        for li in request.line_items
    ]
    return PricedOrder(
        lines=lines,
        sub_total=total,
        tax=Decimal(0),
        shipping_cost=Decimal(0),
        total=total,
        currency="USD",
    )


@dataclass
class Harness:
    client: Client
    task_queue: str
    backend: Backend

    # A delivered order stays open for returns this long here (30 days in production).
    timing: OrderTiming = field(default_factory=lambda: OrderTiming(return_window=RETURNS))

    async def place(
        self,
        product: uuid.UUID = KNOWN_PRODUCT,
        quoted_total: Decimal = STAND_IN_TOTAL,
        capture: str = "automatic",
    ) -> tuple[PlacedOrder, WorkflowHandle[OrderWorkflow, OrderState]]:
        """Placed as the API places it: started with its search attributes."""
        request = order_request(product)
        start = start_order(
            uuid.uuid4(),
            request,
            request.fingerprint(),
            priced(request, quoted_total),
            self.task_queue,
            self.timing,
            capture=capture,
        )
        placed = await self.client.execute_update_with_start_workflow(
            OrderWorkflow.place, start_workflow_operation=start
        )
        return placed, await start.workflow_handle()

    async def settle(
        self, handle: WorkflowHandle[OrderWorkflow, OrderState], pi: str, *, succeeded: bool
    ) -> None:
        """Stripe settles the stand-in PaymentIntent and sends its webhook; wait until the
        order shows the outcome."""
        intent = self.backend.intents[pi]
        if succeeded:
            intent.status, intent.error = "succeeded", None
        else:
            intent.error = DECLINED
        kind = "payment_intent.succeeded" if succeeded else "payment_intent.payment_failed"
        await handle.signal(OrderWorkflow.payment_event, event(pi, kind))
        outcome = OrderStatus.Confirmed if succeeded else OrderStatus.Failed
        await eventually(handle, lambda s: s.status == outcome)

    async def paid(
        self, *, succeeded: bool = True
    ) -> tuple[PlacedOrder, WorkflowHandle[OrderWorkflow, OrderState], PaymentIntentInfo]:
        """An order placed, paid for, and Confirmed (or Failed with a declined card)."""
        placed, handle = await self.place()
        intent = await handle.execute_update(OrderWorkflow.request_payment)
        await self.settle(handle, intent.payment_intent_id, succeeded=succeeded)
        return placed, handle, intent


def event(pi: str, kind: str = "payment_intent.succeeded", eid: str | None = None) -> PaymentEvent:
    return PaymentEvent(
        event_id=eid or f"evt_{uuid.uuid4().hex}", event_type=kind, payment_intent_id=pi
    )


async def eventually(
    handle: WorkflowHandle[OrderWorkflow, OrderState],
    check: Callable[[OrderState], bool],
    timeout: float = 10.0,
) -> OrderState:
    """Query the workflow until `check` holds (bounded), and return that state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await handle.query(OrderWorkflow.state)
        if check(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; state: {state}")
        await asyncio.sleep(0.05)


def stand_in_worker(client: Client, task_queue: str, backend: Backend) -> Worker:
    """The real OrderWorkflow, sandboxed as in production, on stand-in activities."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        activities=backend.activities,
        workflow_runner=sandbox_runner(),
    )
