"""A model of one order's money, checked by property (issue 29).

Hypothesis draws a capture mode and a sequence of what can happen to an order (pay, pay
through 3-D Secure, a declined card, ship all or part, a shipment whose row write fails and
is sent again, delivery, a return, a refund in the Dashboard, a capture in the Dashboard, a
dispute opened, won or lost, a refund that fails and ops' retry, cancel, terminate and
resume from the row, time passing for the timers) and drives the real OrderWorkflow on the
dev server with its stand-in activities through it. After every step the invariants are
checked against the stand-in Stripe, from the model's own record of what happened (never
from the workflow's state):

- captured <= authorized, refunded <= captured, for every PaymentIntent;
- what is held equals the value of what the order kept (the shipped share less the returned
  shares, counting a shipment whose money moved though its row write failed; the total when
  paid and not shipped; nothing when cancelled or never paid), and never exceeds it once
  money moved outside the service (a Dashboard refund, a dispute) or the order needs ops;
- nothing ships unpaid;
- no refund of ours that failed is lost: it is made again, or the order needs attention;
- the workflow never fails a task and never ends while money can move.

The stand-in order is 2 x 50.00 + 8.00 tax = 108.00; one unit's share is 54.00. CI runs a
bounded number of examples; `VULT_MONEY_MODEL_EXAMPLES=200 python3 tasks.py test
tests/workflows/test_money_model.py` runs a longer search (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from tests.support.workflows import (
    DECLINED,
    STAND_IN_TOTAL,
    Backend,
    Harness,
    event,
    eventually,
    stand_in_worker,
)
from vult.domain import payments
from vult.domain.contracts import (
    Cancelling,
    CancelOrder,
    DisputeInfo,
    Fulfilment,
    Hold,
    LineQuantity,
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
    PaymentIntentInfo,
    Payments,
    RefundInfo,
    ResumedRun,
    ReturnRequest,
    ShipOrder,
)
from vult.domain.status import OrderStatus
from vult.process.settings import Settings
from vult.temporal.client import connect
from workflows.order import OrderWorkflow, workflow_id_for

# One test that runs for most of a minute or more: handed out first (tests/support/tiers.py).
pytestmark = pytest.mark.long

S = OrderStatus
TOTAL, UNIT = 10800, 5400
EXAMPLES = int(os.environ.get("VULT_MONEY_MODEL_EXAMPLES", "8"))
STEPS = (
    "pay",
    "pay_3ds",
    "decline",
    "start_processing",
    "ship_one",
    "ship_all",
    "ship_write_fails",
    "deliver",
    "return_one",
    "dashboard_refund",
    "dispute_open",
    "dispute_won",
    "dispute_lost",
    "refund_fails",
    "retry",
    "cancel",
    "capture_outside",
    "terminate_resume",
    "wait",
)
ONE = [LineQuantity(line_item_id="line-1", quantity=1)]


@dataclass
class Model:
    """What the order should hold, from the outside."""

    mode: str
    shipped: int | None = None  # units shipped, once the row says Shipped
    returned: int = 0  # units returned and refunded
    # Units of a shipment whose money moved at Stripe while its row write failed: ops send
    # the same shipment again, and until then the order keeps that share.
    moving: int | None = None
    outside: bool = False  # money moved outside the service (a Dashboard refund, a dispute)
    captured_outside: bool = False  # a capture-at-shipment hold captured in the Dashboard
    returns: int = 0  # return keys used
    delivered_at: datetime | None = None
    log: list[str] = field(default_factory=list)


@dataclass
class Run:
    """The order's workflow now (a resume starts another run)."""

    order_id: uuid.UUID
    handle: WorkflowHandle[OrderWorkflow, OrderState]


def stripe_amounts(backend: Backend, pi: str) -> tuple[int, int, int, int]:
    """(authorized, captured, refunded, disputed) of `pi` at the stand-in Stripe."""
    intent = backend.intents[pi]
    facts_refunds = [
        backend.refund_amounts.get(key, intent.amount)
        for key, owner in backend.refunds.items()
        if owner == pi
        and backend.refund_outcomes.get(backend._refund_id(key), "succeeded")
        not in payments.DEAD_REFUND
    ]
    outside = sum(r.amount for r in backend.outside_refunds.get(pi, []))
    captured = 0
    if intent.status == "succeeded":
        captured = intent.captured if intent.captured is not None else intent.amount
    dispute = backend.disputes.get(pi)
    disputed = 0
    if dispute is not None and (
        dispute.status in payments.CHARGEBACK_OPEN or dispute.status == "lost"
    ):
        disputed = dispute.amount
    return intent.amount, captured, sum(facts_refunds) + outside, disputed


def kept_value(model: Model, status: OrderStatus | None) -> int:
    """What the order is worth to the shop now, in minor units, from the model's record and
    the order's status."""
    if status in (S.Cancelled, S.Pending, S.PaymentProcessing, S.Failed, None):
        return 0
    if model.shipped is not None:
        return UNIT * model.shipped - UNIT * model.returned
    if model.moving is not None:  # its money moved, its row not written yet
        return UNIT * model.moving
    if model.mode == "at_shipment" and not model.captured_outside:
        return 0  # authorized, nothing taken before shipment
    return TOTAL


def money_of(backend: Backend, pi: str | None) -> tuple[int, int]:
    """(captured, refunded) of `pi` at the stand-in Stripe, to see whether a step moved money."""
    if pi is None or pi not in backend.intents:
        return 0, 0
    _, captured, refunded, _ = stripe_amounts(backend, pi)
    return captured, refunded


async def check(h: Harness, run: Run, m: Model) -> None:
    handle = run.handle
    state = await handle.query(OrderWorkflow.state)
    where = " -> ".join(m.log)
    for each in list(h.backend.intents):
        authorized, captured, refunded, _ = stripe_amounts(h.backend, each)
        assert captured <= authorized, f"{each} captured {captured} > {authorized}: {where}"
        assert refunded <= captured, f"{each} refunded {refunded} > captured: {where}"
    pi = state.payments.current.payment_intent_id if state.payments.current else None
    held = 0
    if pi is not None:
        _, captured, refunded, disputed = stripe_amounts(h.backend, pi)
        held = max(0, captured - refunded - disputed)
    superseded = [p for p in h.backend.intents if p != pi]
    for other in superseded:
        _, c, r, d = stripe_amounts(h.backend, other)
        assert c - r - d <= 0, f"{other}, not the order's payment, holds money: {where}"
    value = kept_value(m, state.status)
    # A refund of ours that failed is made again, or the order says it is owed: with
    # neither, what is held stays above what was kept, and the first assertion fails.
    if state.ops.attention is None and not m.outside and not state.cancelling.pending:
        assert held == value, f"held {held}, kept {value} ({state.status}): {where}"
    elif state.ops.attention is None:
        assert held <= value, f"held {held} above kept {value} ({state.status}): {where}"
    if state.status in (S.Shipped, S.Delivered):
        assert pi is not None and stripe_amounts(h.backend, pi)[1] > 0, f"shipped unpaid: {where}"
        assert m.shipped is not None, f"shipped though the model's shipment failed: {where}"
    history = [e async for e in handle.fetch_history_events()]
    # A signal that comes while the workflow completes fails that task with
    # UNHANDLED_COMMAND, by design: the workflow then handles it. Any other cause is a bug.
    failed_tasks = [
        e
        for e in history
        if e.HasField("workflow_task_failed_event_attributes")
        and e.workflow_task_failed_event_attributes.cause
        != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    ]
    assert not failed_tasks, (
        f"a workflow task failed: {where}: "
        f"{failed_tasks[0].workflow_task_failed_event_attributes.cause} "
        f"{failed_tasks[0].workflow_task_failed_event_attributes.failure.message}"
        if failed_tasks
        else ""
    )
    described = await handle.describe()
    assert described.status in (
        WorkflowExecutionStatus.RUNNING,
        WorkflowExecutionStatus.COMPLETED,
    ), f"the workflow is {described.status}: {where}"
    if described.status == WorkflowExecutionStatus.COMPLETED and pi is not None:
        dispute = h.backend.disputes.get(pi)
        assert dispute is None or dispute.status not in payments.OPEN_DISPUTE, (
            f"the workflow ended with a dispute open: {where}"
        )
        assert state.ops.attention is None, f"the workflow ended needing attention: {where}"
        assert m.moving is None, f"the workflow ended with a shipment half made: {where}"


QUIET = 0.05  # how long the workflow must stay idle to count as settled
SETTLE_BOUND = 3.0  # and the most a step waits for it


async def settled(handle: WorkflowHandle[OrderWorkflow, OrderState]) -> None:
    """Let the workflow handle what was signalled (bounded): wait until it has no event
    queued, no workflow task and no activity pending, and stays so for QUIET seconds (a
    short timer leaves a gap between tasks). A fixed pause used to stand for this; a
    condition is stricter and quicker."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_BOUND
    quiet_since: float | None = None
    while loop.time() < deadline:
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            return
        raw = described.raw_description
        busy = raw.HasField("pending_workflow_task") or len(raw.pending_activities) > 0
        if not busy:
            busy = bool((await handle.query(OrderWorkflow.state)).queued_events)
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= QUIET:
            return
        await asyncio.sleep(0.02)


# What a step needs the order to have reached first: the model walks it there, so that
# most drawn sequences reach shipment, returns and disputes.
NEEDS = {
    "start_processing": S.Confirmed,
    "ship_one": S.Processing,
    "ship_all": S.Processing,
    "ship_write_fails": S.Processing,
    "deliver": S.Shipped,
    "return_one": S.Shipped,
    "dashboard_refund": S.Confirmed,
    "capture_outside": S.Confirmed,
    "dispute_open": S.Confirmed,
    "refund_fails": S.Confirmed,
}
ROAD = {
    S.Pending: "pay",
    S.Failed: "pay",
    S.Confirmed: "start_processing",
    S.Processing: "ship_one",
}
ORDER = [S.Pending, S.Confirmed, S.Processing, S.Shipped]


async def walk_to(h: Harness, run: Run, m: Model, target: OrderStatus) -> None:
    """Pay, start processing, ship, as needed to reach `target` (bounded; a cancelled or
    parked order stays where it is)."""
    for _ in range(4):
        state = await run.handle.query(OrderWorkflow.state)
        status = state.status
        if status is None or status not in ROAD or state.ops.attention is not None:
            return
        if status in ORDER and ORDER.index(status) >= ORDER.index(target):
            return
        await step(h, run, m, ROAD[status], walk=False)


def stripe_pays(h: Harness, pi: str, m: Model) -> str:
    """The stand-in PaymentIntent authorized or paid as the mode wants; its event's type."""
    fake = h.backend.intents[pi]
    fake.status = "requires_capture" if m.mode == "at_shipment" else "succeeded"
    fake.error = None
    if m.mode == "at_shipment":
        return "payment_intent.amount_capturable_updated"
    return "payment_intent.succeeded"


async def resume(h: Harness, run: Run, m: Model) -> None:
    """Terminate the order's workflow and start a run from its row, as the sweep does
    (activities/order_resume.py): only what the row says, and the catch-up with Stripe."""
    await run.handle.terminate("the model terminates it")
    b = h.backend
    made = [i.id for i in b.intents.values() if i.order_id == str(run.order_id)]
    fields = b.fields.get(run.order_id, {})
    status = b.rows[run.order_id]
    now = datetime.now(UTC)
    captured = fields.get("amount_captured")
    state = OrderState(
        status=status,
        order_number="VLT-20260101-000009",
        total=STAND_IN_TOTAL,
        currency="USD",
        created_at=now,
        resumes=[ResumedRun(at=now, previous="TERMINATED")],
        catching_up=True,
        payments=Payments(
            attempt=len(made),
            current=PaymentIntentInfo(
                payment_intent_id=made[-1], client_secret="", amount=TOTAL, currency="usd"
            )
            if made
            else None,
            intent_ids=made,
            next_reconcile_at=now + timedelta(minutes=15),
        ),
        cancelling=Cancelling(
            at=now if status == S.Cancelled else None,
            reason=fields.get("cancellation_reason"),
            pending=fields.get("pending_cancel_reason") if status != S.Cancelled else None,
        ),
        hold=Hold(captured=int(Decimal(captured) * 100) if captured is not None else None),
        fulfilment=Fulfilment(delivered_at=m.delivered_at),
    )
    run.handle = await h.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=run.order_id, timing=h.timing, state=state, capture=m.mode),
        id=workflow_id_for(run.order_id),
        task_queue=h.task_queue,
    )


async def step(h: Harness, run: Run, m: Model, what: str, walk: bool = True) -> None:
    """Do `what` if it can be done now (else nothing), as a customer, ops, a bank or a
    cardholder would; first walk the order to where it can, if it can get there."""
    if (await run.handle.describe()).status != WorkflowExecutionStatus.RUNNING:
        return  # closed (delivered past its window, say): nothing more reaches it
    if walk and what in NEEDS:
        await walk_to(h, run, m, NEEDS[what])
    handle = run.handle
    state = await handle.query(OrderWorkflow.state)
    status = state.status
    pi = state.payments.current.payment_intent_id if state.payments.current else None
    b = h.backend
    try:
        if what in ("pay", "pay_3ds", "decline") and status in (S.Pending, S.Failed):
            intent = await handle.execute_update(OrderWorkflow.request_payment)
            pi = intent.payment_intent_id
            fake = b.intents[pi]
            if what == "pay_3ds":  # the bank asks the customer first
                fake.status = "requires_action"
                await handle.signal(
                    OrderWorkflow.payment_event, event(pi, "payment_intent.requires_action")
                )
                await settled(handle)
            if what == "decline":
                fake.error, kind = DECLINED, "payment_intent.payment_failed"
            else:
                kind = stripe_pays(h, pi, m)
            await handle.signal(OrderWorkflow.payment_event, event(pi, kind))
        elif what == "start_processing" and status == S.Confirmed:
            await handle.execute_update(OrderWorkflow.start_processing)
        elif what in ("ship_one", "ship_all", "ship_write_fails") and status == S.Processing:
            units = 2 if what == "ship_all" else 1
            if m.moving is not None:  # the same shipment, sent again
                units = m.moving
            shipment = ShipOrder(
                carrier="UPS", tracking_number="1", line_items=None if units == 2 else ONE
            )
            disputed = pi is not None and (
                (d := b.disputes.get(pi)) is not None and d.status in payments.OPEN_DISPUTE
            )
            before = money_of(b, pi)
            if what == "ship_write_fails":
                b.refuse_status = S.Shipped
            try:
                await handle.execute_update(OrderWorkflow.ship, shipment)
                assert not disputed, f"shipped with a dispute open: {' -> '.join(m.log)}"
                m.shipped, m.moving = units, None
            except WorkflowUpdateFailedError:
                if money_of(b, pi) != before:
                    m.moving = units
                raise
            finally:
                b.refuse_status = None
        elif what == "deliver" and status == S.Shipped:
            await handle.execute_update(OrderWorkflow.deliver)
            m.delivered_at = datetime.now(UTC)
        elif (
            what == "return_one"
            and status in (S.Shipped, S.Delivered)
            and m.shipped is not None
            and m.returned < m.shipped
        ):
            m.returns += 1
            request = ReturnRequest(key=f"r-{m.returns}", reason="Too small", line_items=ONE)
            await handle.execute_update(OrderWorkflow.take_return, request)
            m.returned += 1
        elif what == "dashboard_refund" and pi is not None:
            _, captured, refunded, disputed_amount = stripe_amounts(b, pi)
            if captured - refunded - disputed_amount < 1000:
                return
            refund = RefundInfo(
                refund_id=f"re_dash_{uuid.uuid4().hex[:6]}",
                status="succeeded",
                amount=1000,
                currency="usd",
            )
            b.outside_refunds.setdefault(pi, []).append(refund)
            m.outside = True
            await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.refunded"))
        elif what == "capture_outside" and pi is not None:
            fake = b.intents[pi]
            if fake.status != "requires_capture" or m.moving is not None:
                return
            fake.status, fake.captured = "succeeded", fake.amount
            m.captured_outside = True
            await handle.signal(OrderWorkflow.payment_event, event(pi, "payment_intent.succeeded"))
        elif what.startswith("dispute_") and pi is not None:
            _, captured, _, _ = stripe_amounts(b, pi)
            current = b.disputes.get(pi)
            if what == "dispute_open" and captured > 0 and current is None:
                b.disputes[pi] = DisputeInfo(
                    dispute_id=f"dp_{pi}", status="needs_response", amount=captured
                )
                kind = "charge.dispute.created"
            elif current is not None and current.status == "needs_response":
                outcome = "won" if what == "dispute_won" else "lost"
                b.disputes[pi] = current.model_copy(update={"status": outcome})
                kind = "charge.dispute.closed"
            else:
                return
            m.outside = True
            await handle.signal(OrderWorkflow.payment_event, event(pi, kind))
        elif what == "refund_fails" and pi is not None:
            ours = [
                k
                for k, owner in b.refunds.items()
                if owner == pi and b._refund_id(k) not in b.refund_outcomes
            ]
            if not ours:
                return
            b.refund_outcomes[b._refund_id(ours[-1])] = "failed"
            await handle.signal(OrderWorkflow.payment_event, event(pi, "refund.failed"))
        elif what == "retry" and state.ops.attention is not None:
            await handle.execute_update(OrderWorkflow.retry)
        elif what == "cancel" and status != S.Cancelled:
            await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
        elif what == "terminate_resume" and status is not None:
            await resume(h, run, m)
            await eventually(run.handle, lambda s: not s.catching_up or s.ops.attention is not None)
        elif what == "wait":
            await asyncio.sleep(1.5)  # the return window and the attention retry come due
        else:
            return
    except WorkflowUpdateFailedError:
        pass  # refused (a dispute open, a write refused, ...): the invariants still hold
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return  # it closed meanwhile (its return window over): nothing reaches it now
    m.log.append(what)
    await settled(run.handle)


async def one_order(address: str, mode: str, steps: list[str]) -> None:
    client = await connect(Settings(temporal_address=address))
    task_queue = f"model-{uuid.uuid4()}"
    backend = Backend()
    async with stand_in_worker(client, task_queue, backend):
        # Short windows, so a run's timers (the return window, retries) come due in it.
        h = Harness(
            client,
            task_queue,
            backend,
            timing=OrderTiming(
                return_window=timedelta(seconds=1), attention_retry=timedelta(seconds=1)
            ),
        )
        placed, handle = await h.place(capture=mode)
        run = Run(order_id=placed.order_id, handle=handle)
        model = Model(mode=mode)
        for what in steps:
            await step(h, run, model, what)
            await check(h, run, model)
        await stop(run)


async def stop(run: Run) -> None:
    """The example's workflow does not outlive it (the dev server is shared)."""
    if (await run.handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await run.handle.terminate("the example is over")


# Journeys the review found (issue 29), run every time beside the drawn ones.
KNOWN = [
    ("at_shipment", ["ship_write_fails", "ship_one", "return_one", "deliver", "wait"]),
    ("automatic", ["ship_write_fails", "ship_all", "return_one", "refund_fails", "retry"]),
    ("at_shipment", ["capture_outside", "ship_one", "deliver", "return_one"]),
    ("at_shipment", ["pay", "start_processing", "terminate_resume", "ship_all", "return_one"]),
    ("automatic", ["return_one", "refund_fails", "wait", "retry", "wait"]),
    ("automatic", ["deliver", "dispute_open", "wait", "wait", "dispute_lost", "wait"]),
    ("automatic", ["pay_3ds", "cancel", "refund_fails", "terminate_resume", "retry"]),
    # Found by the search (issue 30's session): an unshipped share's refund failed, then the
    # workflow was terminated; the resumed run must still know that money is owed.
    ("automatic", ["pay", "start_processing", "ship_one", "refund_fails", "terminate_resume"]),
    ("automatic", ["ship_one", "refund_fails", "terminate_resume", "retry", "wait"]),
    ("automatic", ["ship_one", "refund_fails", "retry", "refund_fails", "terminate_resume"]),
]


def known(test: Callable[..., None]) -> Callable[..., None]:
    for mode, steps in reversed(KNOWN):
        test = example(mode=mode, steps=steps)(test)
    return test


# The suite's 180 s per test is for the short search; a longer one gets time by its size.
@pytest.mark.timeout(120 + 15 * (EXAMPLES + len(KNOWN)))
@known
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mode=st.sampled_from(["automatic", "at_shipment"]),
    steps=st.lists(st.sampled_from(STEPS), min_size=4, max_size=16),
)
def test_the_money_held_is_always_what_the_order_kept(
    temporal_address: str, mode: str, steps: list[str]
) -> None:
    # Each example on a loop of its own (Hypothesis drives plain functions).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, one_order(temporal_address, mode, steps)).result(timeout=240)
