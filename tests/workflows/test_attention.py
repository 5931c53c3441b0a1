"""An error no retry fixes parks the order for ops; it never fails or ends the workflow."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.workflows.conftest import Harness, event, eventually
from vult.domain.contracts import CancelOrder, OrderTiming
from vult.domain.failures import Failure
from vult.domain.status import OrderStatus
from vult.temporal import search_attributes as sa
from workflows.order import OrderWorkflow

S = OrderStatus


async def test_a_refund_stripe_refuses_parks_the_order_and_ops_can_retry_it(
    harness: Harness,
) -> None:
    # The customer was declined, retried with a new PaymentIntent and paid; then the
    # first one went through after all and must be refunded, but Stripe refuses.
    placed, handle, first = await harness.paid(succeeded=False)
    second = await handle.execute_update(OrderWorkflow.request_payment)
    await harness.settle(handle, second.payment_intent_id, succeeded=True)
    harness.backend.refuse_refund = "This charge is disputed"
    harness.backend.intents[first.payment_intent_id].status = "succeeded"
    await handle.signal(OrderWorkflow.payment_event, event(first.payment_intent_id))

    state = await eventually(handle, lambda s: s.attention is not None)
    assert "This charge is disputed" in state.attention
    assert [e.payment_intent_id for e in state.parked_events] == [first.payment_intent_id]
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert described.typed_search_attributes.get(sa.NEEDS_ATTENTION) is True
    assert state.status == S.Confirmed  # the order itself is untouched

    # Still listening: fulfilment goes on while the refund waits for ops.
    await handle.execute_update(OrderWorkflow.start_processing)
    assert harness.backend.rows[placed.order_id] == S.Processing

    harness.backend.refuse_refund = None
    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: first.payment_intent_id in s.refunds)
    assert state.attention is None and state.parked_events == []
    assert list(harness.backend.refunds.values()) == [first.payment_intent_id]
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.NEEDS_ATTENTION) is False


async def test_retry_is_refused_when_nothing_is_stuck(harness: Harness) -> None:
    _, handle = await harness.place()
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(OrderWorkflow.retry)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Failure.INVALID_TRANSITION


async def test_a_temporal_cancellation_request_does_not_end_a_paid_order(
    harness: Harness,
) -> None:
    placed, handle, _ = await harness.paid()
    await handle.cancel()  # the Web UI's "Request Cancellation"
    await handle.execute_update(OrderWorkflow.start_processing)
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert harness.backend.rows[placed.order_id] == S.Processing
    assert harness.backend.refunds == {}


async def test_a_refund_whose_status_write_fails_parks_and_the_order_is_not_fulfilled(
    harness: Harness,
) -> None:
    placed, handle, intent = await harness.paid()
    harness.backend.refuse_status = S.Cancelled  # the write after the refund is refused
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Failure.PAYMENT_UNAVAILABLE
    state = await handle.query(OrderWorkflow.state)
    assert state.attention is not None and state.pending_cancel == "out of stock"
    assert intent.payment_intent_id in state.refunds  # the money went back...
    # ... so the order, still Confirmed in the database, must not be shipped.
    with pytest.raises(WorkflowUpdateFailedError) as refused_update:
        await handle.execute_update(OrderWorkflow.start_processing)
    assert "refunded" in str(refused_update.value.cause)
    assert harness.backend.rows[placed.order_id] == S.Confirmed

    harness.backend.refuse_status = None
    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: s.status == S.Cancelled)
    assert state.pending_cancel is None and state.attention is None
    assert harness.backend.rows[placed.order_id] == S.Cancelled
    assert list(harness.backend.refunds.values()) == [intent.payment_intent_id]  # once


async def test_a_refund_that_fails_at_stripe_parks_the_order_and_a_retry_refunds_again(
    harness: Harness,
) -> None:
    placed, handle, intent = await harness.paid()
    pi = intent.payment_intent_id
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))
    harness.backend.refund_outcomes[f"re_{pi}"] = "failed"
    await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.refund.updated"))

    state = await eventually(handle, lambda s: s.attention is not None)
    assert f"Refund re_{pi} of {pi} failed at Stripe" in state.attention
    assert state.failed_refunds == {pi: [f"re_{pi}"]} and pi not in state.refunds
    assert harness.backend.fields[placed.order_id]["stripe_payment_status"] == "refund_failed"

    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: pi in s.refunds)
    assert state.refunds[pi].refund_id == f"re_{pi}_2" and state.attention is None
    # A new refund under a new key: Stripe would answer the old key with the failed one.
    assert sorted(harness.backend.refunds) == [
        f"order:{placed.order_id}:refund:{pi}",
        f"order:{placed.order_id}:refund:{pi}:2",
    ]


async def test_cancelling_mid_charge_asks_stripe_again_under_a_new_key(
    harness: Harness,
) -> None:
    harness.timing = OrderTiming(in_flight_retry=timedelta(milliseconds=200))
    placed, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    harness.backend.intents[pi].status = "processing"
    cancelling = asyncio.create_task(handle.execute_update(OrderWorkflow.cancel, CancelOrder()))
    for _ in range(100):  # the first ask has been answered "processing"
        if harness.backend.cancel_calls:
            break
        await asyncio.sleep(0.05)
    harness.backend.intents[pi].status = "requires_payment_method"  # the charge fell through
    await asyncio.wait_for(cancelling, timeout=10)
    assert harness.backend.intents[pi].status == "canceled"
    assert harness.backend.rows[placed.order_id] == S.Cancelled
    assert harness.backend.fields[placed.order_id]["stripe_payment_status"] == "canceled"
