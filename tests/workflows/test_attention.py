"""An error no retry fixes parks the order for ops; it never fails or ends the workflow."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.workflows.conftest import Harness, event, eventually
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
