"""A delivered order whose return window closes while money can still move (a dispute open,
weeks after delivery) keeps its workflow answering: it asks Stripe now and then until the
money has settled, and closes only then (issue 29: no timer without an answer)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from tests.support.workflows import Harness, event, eventually
from vult.domain.contracts import DisputeInfo, OrderTiming, ShipOrder
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow


async def test_a_dispute_open_when_the_return_window_closes_neither_spins_nor_ends_the_order(
    harness: Harness,
) -> None:
    harness.timing = OrderTiming(
        return_window=timedelta(seconds=2), reconcile_max_interval=timedelta(seconds=2)
    )
    _, handle, intent = await harness.paid()
    pi = intent.payment_intent_id
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1"))
    await handle.execute_update(OrderWorkflow.deliver)
    harness.backend.disputes[pi] = DisputeInfo(
        dispute_id="dp_1", status="needs_response", amount=intent.amount, reason="fraudulent"
    )
    await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.dispute.created"))
    await eventually(handle, lambda s: "dispute" in s.ops.notices)
    await asyncio.sleep(4)  # past the return window: the dispute still open
    # It answers (a workflow task stuck in a loop would time out here) and has not ended.
    state = await asyncio.wait_for(handle.query(OrderWorkflow.state), timeout=5)
    assert state.status == OrderStatus.Delivered
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    history = [e async for e in handle.fetch_history_events()]
    failed_tasks = [e for e in history if e.HasField("workflow_task_failed_event_attributes")]
    assert failed_tasks == []
    # The dispute is won, its event lost: the workflow finds out by asking, then closes.
    harness.backend.disputes[pi] = harness.backend.disputes[pi].model_copy(update={"status": "won"})
    for _ in range(100):
        if (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED:
            break
        await asyncio.sleep(0.1)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
