"""Order events (docs/events.md) under an adversarial review: each test names the promise it
holds the code to, and failed on the code it was written against.

The order's workflow runs on the dev server with the stand-in activities of
tests/support/workflows.py; `Recording` keeps what each row write told (the `events` its
input carried), as the outbox would keep them. The outbox tests at the end run the real
activities on the session's PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy

from api.order_commands import OrderCommands
from tests.support.after_close import AMOUNT, stripe_event, until
from tests.support.workflows import (
    RETURNS,
    STAND_IN_TOTAL,
    Backend,
    FakeStripeIntent,
    Harness,
    event,
    eventually,
    stand_in_worker,
)
from vult.domain.contracts import (
    CancelOrder,
    ChargeFacts,
    CreatedOrderRow,
    CreateOrderRow,
    DisputeInfo,
    EmittedEvent,
    LineQuantity,
    Money,
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
    PaymentIntentInfo,
    Payments,
    RecordReturn,
    RefundInfo,
    RefundPayment,
    ShipOrder,
    StatusChange,
)
from vult.domain.order_events import OrderEventType
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow, workflow_id_for

S = OrderStatus
E = OrderEventType
OPS_TOKEN = "adversarial-ops-token-0123456789abcdef"


@dataclass
class Recording(Backend):
    """The stand-in Backend, keeping the events each committed write carried; and, when
    `instant_refunds`, Stripe answering a refund `succeeded` at once (as it does for most
    card refunds) instead of `pending`."""

    emitted: list[EmittedEvent] = field(default_factory=list)
    instant_refunds: bool = False

    @activity.defn(name="create_order_row")
    async def create_order_row(self, req: CreateOrderRow) -> CreatedOrderRow:
        created = await super().create_order_row(req)
        self.emitted += req.events
        return created

    @activity.defn(name="change_order_status")
    async def change_order_status(self, change: StatusChange) -> None:
        await super().change_order_status(change)
        self.emitted += change.events

    @activity.defn(name="record_return")
    async def record_return(self, req: RecordReturn) -> datetime | None:
        recorded_at = await super().record_return(req)
        self.emitted += req.events
        return recorded_at

    @activity.defn(name="refund_payment")
    async def refund_payment(self, req: RefundPayment) -> RefundInfo:
        refund = await super().refund_payment(req)
        return refund.model_copy(update={"status": "succeeded"}) if self.instant_refunds else refund

    def types(self) -> list[str]:
        return [e.type for e in self.emitted]


@dataclass
class Run:
    harness: Harness
    backend: Recording


@pytest.fixture
async def run(temporal_client: Client, task_queue: str) -> AsyncIterator[Run]:
    backend = Recording()
    async with stand_in_worker(temporal_client, task_queue, backend):
        yield Run(Harness(temporal_client, task_queue, backend), backend)


Handle = WorkflowHandle[OrderWorkflow, OrderState]


async def authorized(harness: Harness) -> tuple[Handle, str]:
    """Placed with capture at shipment and paid: the card is held (`requires_capture`)."""
    _, handle = await harness.place(capture="at_shipment")
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    harness.backend.intents[pi].status = "requires_capture"
    await handle.signal(
        OrderWorkflow.payment_event, event(pi, "payment_intent.amount_capturable_updated")
    )
    await eventually(handle, lambda s: s.status == S.Confirmed)
    return handle, pi


# ---- 1. A refund recorded on the row without its order.refunded ------------------------


async def test_a_cancellation_whose_refund_stripe_settles_at_once_tells_order_refunded(
    run: Run,
) -> None:
    """'Written with the fact ... A fact on the order row always has its event', 'never
    missed'. Cancelling a paid order refunds it and writes the refund on the row (its id,
    `refunded`, the amount) with order.cancelled only: order.refunded waits for a later
    `refunds.learn` (Stripe's refund webhook, or the money-in-flight timer, which runs only
    for a refund still pending). A refund Stripe answers `succeeded` at once is never in
    flight: with its webhook late or lost, the grace period ends and the order closes
    without ever telling the refund."""
    run.harness.timing = OrderTiming(return_window=RETURNS, cancelled_grace=timedelta(seconds=1))
    run.backend.instant_refunds = True
    placed, handle, intent = await run.harness.paid()
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="changed my mind"))
    await asyncio.wait_for(handle.result(), timeout=20)  # grace over: the workflow closed
    row = run.backend.fields[placed.order_id]
    assert row.get("stripe_refund_id") and row.get("stripe_payment_status") == "refunded", row
    refund_id = row["stripe_refund_id"]
    told = run.backend.types()
    assert E.REFUNDED.value in told, (
        f"refund {refund_id} of {intent.payment_intent_id} is on the row "
        f"(stripe_payment_status={row['stripe_payment_status']}) but no order.refunded was "
        f"ever written; the order told {told} and its workflow has closed"
    )


async def test_a_partial_shipment_whose_refund_settles_at_once_tells_order_refunded(
    run: Run,
) -> None:
    """The same gap through the shipment: the unshipped share's refund is written on the
    row with order.shipped only ('the rest never ships and its share is refunded, told as
    order.refunded'); settled at once, it is never in flight, and once the return window
    closes nothing tells it."""
    run.backend.instant_refunds = True
    placed, handle, _ = await run.harness.paid()
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(
        OrderWorkflow.ship,
        ShipOrder(
            carrier="UPS",
            tracking_number="1Z",
            line_items=[LineQuantity(line_item_id="line-1", quantity=1)],
        ),
    )
    await handle.execute_update(OrderWorkflow.deliver)
    await asyncio.wait_for(handle.result(), timeout=20)  # the return window (2 s) closed
    row = run.backend.fields[placed.order_id]
    told = run.backend.types()
    assert E.REFUNDED.value in told, (
        f"the unshipped share's refund is on the row (amount_refunded="
        f"{row.get('amount_refunded')}) but no order.refunded was written; told {told}"
    )


# ---- 2. A parking never told as order.needs_attention ----------------------------------


async def test_a_step_parked_while_a_notice_is_up_is_told_needs_attention(run: Run) -> None:
    """'order.needs_attention: a step no retry fixed parked the order for ops, one per
    parking'. `attention.park` sets `ops.attention_since` (which names the event) only when
    the order needed no attention at all, notices included; `events.needs_attention`
    tells nothing without it. A step that parks while a notice is up (an open dispute, the
    authorization reminder, 'no money held') is never told."""
    placed, handle, intent = await run.harness.paid()
    pi = intent.payment_intent_id
    run.backend.disputes[pi] = DisputeInfo(
        dispute_id="dp_1", status="needs_response", amount=AMOUNT
    )
    await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.dispute.created"))
    await eventually(handle, lambda s: "dispute" in s.ops.notices)
    # Then a step no retry fixes: Stripe cannot be read for this event past its retries.
    run.backend.failing_retrieves.append(pi)
    await handle.signal(OrderWorkflow.payment_event, event(pi, "payment_intent.succeeded"))
    state = await eventually(handle, lambda s: s.ops.attention is not None)
    await asyncio.sleep(1.5)  # the main loop told what it tells
    told = run.backend.types()
    assert E.NEEDS_ATTENTION.value in told, (
        f"parked ({state.ops.attention!r}, attention_since={state.ops.attention_since}) "
        f"while the dispute notice was up: no order.needs_attention written; told {told}"
    )
    await handle.terminate("test over")


async def test_a_capture_refused_at_shipment_is_told_needs_attention(run: Run) -> None:
    """The same promise for a parking made by an update handler: `ship` parks a refused
    capture with no retry time (ops' to act on) and does not wake the main loop, whose
    `_tell_attention` is the only writer of order.needs_attention; with no timer left
    (`decisions.deadlines` is empty while parked without retry_at) the loop sleeps until
    ops act, and their `retry` clears the parking before it is ever told."""
    handle, pi = await authorized(run.harness)
    await handle.execute_update(OrderWorkflow.start_processing)
    run.backend.intents[pi].status = "canceled"  # the authorization lapsed at Stripe
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1Z")
        )
    state = await eventually(handle, lambda s: s.ops.attention is not None)
    await asyncio.sleep(2.0)
    told = run.backend.types()
    assert E.NEEDS_ATTENTION.value in told, (
        f"parked by the ship handler ({state.ops.attention!r}): 2 s later no "
        f"order.needs_attention was written; told {told}"
    )
    await handle.terminate("test over")


# ---- 3. A fact of a 1.0 run told by the next run, weeks late ---------------------------


async def test_the_first_1_1_run_of_a_1_0_order_does_not_tell_what_the_1_0_run_recorded(
    run: Run,
) -> None:
    """'Emitted at the moment the fact is recorded'; 'orders placed before 1.1 emit nothing
    until their workflow's next run'. A 1.0 run recorded a Dashboard refund (its amounts in
    the state, on the row) and continued as new on 1.1: the carried state has no `told`
    (1.0 had none), so the first `refunds.learn` of the new run (here ops starting
    fulfilment) tells that old refund now, stamped now, and mails the customer about it;
    likewise every old dispute (order.disputed and order.dispute_closed at once)."""
    order_id = uuid.uuid4()
    pi = f"pi_{uuid.uuid4().hex[:8]}"
    backend = run.backend
    backend.rows[order_id] = S.Confirmed
    backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), status="succeeded")
    old = RefundInfo(refund_id="re_dashboard_old", status="succeeded", amount=1080, currency="usd")
    backend.outside_refunds[pi] = [old]
    now = datetime.now(UTC)
    carried = OrderState(  # what the 1.0 run carried over continue-as-new
        status=S.Confirmed,
        order_number="VLT-20261101-000009",
        total=STAND_IN_TOTAL,
        currency="USD",
        created_at=now - timedelta(days=20),
        payments=Payments(
            attempt=1,
            current=PaymentIntentInfo(
                payment_intent_id=pi, client_secret="", amount=AMOUNT, currency="usd"
            ),
            intent_ids=[pi],
        ),
        money=Money(
            charges={
                pi: ChargeFacts(
                    payment_intent_id=pi,
                    currency="usd",
                    amount_captured=AMOUNT,
                    amount_refunded=old.amount,
                    refunds=[old],
                )
            }
        ),
    )
    handle = await run.harness.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=order_id, timing=run.harness.timing, state=carried),
        id=workflow_id_for(order_id),
        task_queue=run.harness.task_queue,
    )
    await asyncio.sleep(1.0)  # the run's first task done (see the next test for why)
    await handle.execute_update(OrderWorkflow.start_processing)
    told = [(e.type, e.detail.get("refundId"), e.at.date()) for e in backend.emitted]
    assert not any(kind == E.REFUNDED.value for kind, _, _ in told), (
        f"refund {old.refund_id}, recorded by the 1.0 run weeks ago, was told now: {told}"
    )
    await handle.terminate("test over")


async def test_a_command_in_the_first_task_of_a_continued_run_is_told(run: Run) -> None:
    """'Never missed'. `run` sets `OrderContext.emits_events` (patch 1.1-order-events) as
    its first statement, but an update in the run's first workflow task (one sent while
    the previous run continued as new, retried onto this run; here sent with the start)
    has its handler run before it: with nothing to wait for (the order is placed, not
    catching up), `deliver` writes Shipped -> Delivered with the context `__init__` made,
    whose emits_events is False. The transition is on the row; order.delivered is not."""
    order_id = uuid.uuid4()
    pi = f"pi_{uuid.uuid4().hex[:8]}"
    backend = run.backend
    backend.rows[order_id] = S.Shipped
    backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), status="succeeded")
    carried = OrderState(  # what the previous run carried over continue-as-new
        status=S.Shipped,
        order_number="VLT-20261101-000010",
        total=STAND_IN_TOTAL,
        currency="USD",
        created_at=datetime.now(UTC) - timedelta(days=3),
        payments=Payments(
            attempt=1,
            current=PaymentIntentInfo(
                payment_intent_id=pi, client_secret="", amount=AMOUNT, currency="usd"
            ),
            intent_ids=[pi],
        ),
    )
    start = WithStartWorkflowOperation(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=order_id, timing=run.harness.timing, state=carried),
        id=workflow_id_for(order_id),
        task_queue=run.harness.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await run.harness.client.execute_update_with_start_workflow(
        OrderWorkflow.deliver, start_workflow_operation=start
    )
    assert backend.rows[order_id] == S.Delivered
    told = backend.types()
    assert E.DELIVERED.value in told, (
        f"Shipped -> Delivered written on order {order_id}'s row by an update in the "
        f"run's first task; no order.delivered (told {told})"
    )
    handle = await start.workflow_handle()
    await handle.terminate("test over")


# ---- 4. Facts the after-close workflow records, never told -----------------------------


async def test_a_dispute_recorded_after_the_order_closed_is_told_order_disputed(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    """'Each fact ... becomes an order event', 'never missed'. A delivered order's
    workflow has closed (its return window is over); its customer's bank opens a dispute
    weeks later. The after-close workflow (LatePaymentWorkflow) records the dispute on the
    row (`record_payment`: dispute_status, amount_refunded) and flags it for ops, but
    RecordPayment carries no events and nothing else writes one: order.disputed (and
    order.refunded for a refund after close, order.dispute_closed) never reach anyone."""
    order_id = uuid.uuid4()
    pi = f"pi_{uuid.uuid4().hex[:8]}"
    backend.rows[order_id] = S.Delivered
    backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), status="succeeded")
    backend.disputes[pi] = DisputeInfo(dispute_id="dp_late", status="needs_response", amount=AMOUNT)
    await commands.settle_late(order_id, stripe_event(pi, "charge.dispute.created"))
    await until("the dispute recorded on the row", lambda: bool(backend.recorded))
    recorded = backend.recorded[0]
    assert recorded.dispute_status == "needs_response"
    told: list[Any] = list(getattr(recorded, "events", []))
    assert [e.type for e in told] == [E.DISPUTED.value], (
        f"dispute dp_late recorded on order {order_id}'s row after close "
        f"(dispute_status={recorded.dispute_status}) with no order.disputed event: "
        f"{type(recorded).__name__} carries {told}"
    )
    handle = temporal_client.get_workflow_handle(f"late-payment-{pi}")
    await handle.terminate("test over")
