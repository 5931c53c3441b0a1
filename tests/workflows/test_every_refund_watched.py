"""Every refund the service makes is watched until Stripe settles it (issue 29, item 3): a
return's refund that fails at Stripe parks the order with the amount owed; ops' `retry`
makes it again under a fresh key, once; `resolve` settles it, and no later event makes it
again."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio.client import WorkflowHandle

from tests.support.workflows import Harness, event, eventually
from vult.domain.contracts import OrderState, ResolveOrder, ReturnRequest, ShipOrder
from workflows.order import OrderWorkflow


async def returned_then_failed(
    harness: Harness,
) -> tuple[WorkflowHandle[OrderWorkflow, OrderState], str, str]:
    """Paid, shipped, 20.00 returned; that refund then fails at the bank."""
    _, handle, intent = await harness.paid()
    pi = intent.payment_intent_id
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1"))
    request = ReturnRequest(key="r-1", reason="Too small", amount=Decimal("20.00"))
    record = await handle.execute_update(OrderWorkflow.take_return, request)
    assert record.refund_id is not None and harness.backend.refund_calls == 1
    harness.backend.refund_outcomes[record.refund_id] = "failed"
    await handle.signal(OrderWorkflow.payment_event, event(pi, "refund.failed"))
    return handle, pi, record.refund_id


def owed(state: OrderState) -> bool:
    return state.ops.attention is not None and "the return 'r-1'" in state.ops.attention


async def test_a_return_refund_that_fails_parks_the_order_and_retry_refunds_it_once(
    harness: Harness,
) -> None:
    handle, pi, _ = await returned_then_failed(harness)
    state = await eventually(handle, owed)
    assert "2000 minor units" in (state.ops.attention or "")
    (row,) = harness.backend.fields.values()
    assert row["stripe_payment_status"] == "refund_failed"
    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(
        handle, lambda s: any(w.retries == 1 for w in s.money.watched_refunds.values())
    )
    assert state.ops.attention is None and harness.backend.refund_calls == 2
    again = [k for k in harness.backend.refunds if k.endswith(":again-1")]
    assert len(again) == 1 and harness.backend.refund_amounts[again[0]] == 2000
    # The retried refund's own events change nothing more.
    await handle.signal(OrderWorkflow.payment_event, event(pi, "refund.updated"))
    await eventually(handle, lambda s: not s.ops.parked_events and s.ops.attention is None)
    assert harness.backend.refund_calls == 2


async def test_a_failed_return_refund_resolved_by_ops_is_not_made_again(
    harness: Harness,
) -> None:
    handle, pi, _ = await returned_then_failed(harness)
    await eventually(handle, owed)
    note = ResolveOrder(note="Paid back by bank transfer")
    await handle.execute_update(OrderWorkflow.resolve, note)
    await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.refund.updated"))
    await asyncio.sleep(0.5)  # the event handled
    state = await handle.query(OrderWorkflow.state)
    assert state.ops.attention is None and not state.money.watched_refunds
    assert harness.backend.refund_calls == 1
