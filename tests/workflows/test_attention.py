"""An error no retry fixes parks the order for ops; it never fails or ends the workflow."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.support.workflows import Harness, event, eventually
from vult.domain.contracts import CancelOrder, OrderTiming, ResolveOrder
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

    state = await eventually(handle, lambda s: s.ops.attention is not None)
    assert "This charge is disputed" in (state.ops.attention or "")
    assert [e.payment_intent_id for e in state.ops.parked_events] == [first.payment_intent_id]
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert described.typed_search_attributes.get(sa.NEEDS_ATTENTION) is True
    assert state.status == S.Confirmed  # the order itself is untouched

    # Still listening: fulfilment goes on while the refund waits for ops.
    await handle.execute_update(OrderWorkflow.start_processing)
    assert harness.backend.rows[placed.order_id] == S.Processing

    harness.backend.refuse_refund = None
    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: first.payment_intent_id in s.money.refunds)
    assert state.ops.attention is None and state.ops.parked_events == []
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
    assert state.ops.attention is not None and state.cancelling.pending == "out of stock"
    assert intent.payment_intent_id in state.money.refunds  # the money went back...
    # ... so the order, still Confirmed in the database, must not be shipped.
    with pytest.raises(WorkflowUpdateFailedError) as refused_update:
        await handle.execute_update(OrderWorkflow.start_processing)
    assert "refunded" in str(refused_update.value.cause)
    assert harness.backend.rows[placed.order_id] == S.Confirmed

    harness.backend.refuse_status = None
    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: s.status == S.Cancelled)
    assert state.cancelling.pending is None and state.ops.attention is None
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

    state = await eventually(handle, lambda s: s.ops.attention is not None)
    assert f"Refund re_{pi} of {pi} failed at Stripe" in (state.ops.attention or "")
    assert state.money.failed_refunds == {pi: [f"re_{pi}"]} and pi not in state.money.refunds
    assert harness.backend.fields[placed.order_id]["stripe_payment_status"] == "refund_failed"

    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: pi in s.money.refunds)
    assert state.money.refunds[pi].refund_id == f"re_{pi}_2" and state.ops.attention is None
    # A new refund under a new key: Stripe would answer the old key with the failed one.
    assert sorted(harness.backend.refunds) == [
        f"order:{placed.order_id}:refund:{pi}",
        f"order:{placed.order_id}:refund:{pi}:2",
    ]


async def test_cancelling_mid_charge_is_recorded_and_finished_without_holding_the_lock(
    harness: Harness,
) -> None:
    harness.timing = OrderTiming(in_flight_retry=timedelta(milliseconds=300))
    placed, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    harness.backend.intents[pi].status = "processing"
    with pytest.raises(WorkflowUpdateFailedError) as recorded:
        await asyncio.wait_for(handle.execute_update(OrderWorkflow.cancel, CancelOrder()), 10)
    cause = recorded.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Failure.CANCEL_RECORDED
    # Meanwhile the order takes events: nothing waits behind the cancellation.
    await handle.signal(OrderWorkflow.payment_event, event("pi_elsewhere"))
    state = await eventually(handle, lambda s: "pi_elsewhere" in (s.payments.last_note or ""))
    assert (
        state.cancelling.pending == "Cancelled by customer" and state.status == S.PaymentProcessing
    )
    harness.backend.intents[pi].status = "requires_payment_method"  # the charge fell through
    state = await eventually(handle, lambda s: s.status == S.Cancelled, timeout=10)
    assert harness.backend.intents[pi].status == "canceled" and state.cancelling.pending is None
    assert harness.backend.rows[placed.order_id] == S.Cancelled
    assert harness.backend.fields[placed.order_id]["stripe_payment_status"] == "canceled"
    # Each ask had its own key: Stripe replays a key's first answer ("processing").
    asked = sorted(k for k in harness.backend.cancel_answers if ":cancel:" in k)
    assert asked[0] == f"order:{placed.order_id}:cancel:{pi}" and len(asked) >= 2


async def test_a_temporal_cancellation_while_an_update_holds_the_lock_loses_nothing(
    harness: Harness,
) -> None:
    """The main loop waits for the lock behind a cancel whose refund Stripe is slow to
    make; a cancellation request reaches it there: the workflow keeps running, and the
    event it was about to handle is handled."""
    placed, handle, intent = await harness.paid()
    harness.backend.refunds_held = asyncio.Event()
    cancelling = asyncio.create_task(handle.execute_update(OrderWorkflow.cancel, CancelOrder()))
    for _ in range(100):
        if harness.backend.refund_calls:
            break
        await asyncio.sleep(0.05)
    await handle.signal(OrderWorkflow.payment_event, event("pi_elsewhere", eid="evt_queued"))
    await asyncio.sleep(0.3)  # the main loop took it and waits for the lock
    await handle.cancel()  # the Web UI's "Request Cancellation", right then
    await asyncio.sleep(0.3)
    harness.backend.refunds_held.set()
    await asyncio.wait_for(cancelling, timeout=10)
    state = await eventually(handle, lambda s: "pi_elsewhere" in (s.payments.last_note or ""))
    assert state.status == S.Cancelled and intent.payment_intent_id in state.money.refunds
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert harness.backend.rows[placed.order_id] == S.Cancelled


async def test_a_placement_the_database_cannot_take_parks_and_places_the_order_later(
    harness: Harness,
) -> None:
    harness.timing = OrderTiming(attention_retry=timedelta(milliseconds=500))
    harness.backend.failing_creates = 2
    placed, handle = await asyncio.wait_for(harness.place(), timeout=20)
    assert placed.status == S.Pending and harness.backend.create_row_calls == 3
    state = await handle.query(OrderWorkflow.state)
    assert state.ops.attention is None and state.status == S.Pending
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert described.typed_search_attributes.get(sa.NEEDS_ATTENTION) is False


async def test_a_failed_refund_is_refunded_again_only_when_ops_ask(harness: Harness) -> None:
    harness.timing = OrderTiming(attention_retry=timedelta(milliseconds=300))
    placed, handle, intent = await harness.paid()
    pi = intent.payment_intent_id
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))
    harness.backend.refund_outcomes[f"re_{pi}"] = "failed"
    await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.refund.updated"))
    state = await eventually(handle, lambda s: s.ops.attention is not None)
    assert state.ops.retry_at is None  # waits for ops, not for a timer
    # More events about it, and time passing: still no second refund.
    await handle.signal(OrderWorkflow.payment_event, event(pi, "refund.failed"))
    await asyncio.sleep(1.5)
    assert list(harness.backend.refunds) == [f"order:{placed.order_id}:refund:{pi}"]
    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: pi in s.money.refunds)
    assert len(harness.backend.refunds) == 2 and state.ops.attention is None


async def test_ops_resolve_a_parked_cancellation_and_its_retries_stop(harness: Harness) -> None:
    harness.timing = OrderTiming(attention_retry=timedelta(milliseconds=300))
    placed, handle, intent = await harness.paid()
    harness.backend.refuse_refund = "No such charge"
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))
    await eventually(handle, lambda s: s.ops.attention is not None)
    note = "Refunded by bank transfer on 2026-12-01 (ticket 4411), ann@ops"
    await handle.execute_update(OrderWorkflow.resolve, ResolveOrder(note=note))
    state = await handle.query(OrderWorkflow.state)
    assert state.ops.attention is None and state.status == S.Cancelled
    assert (
        state.ops.resolutions[0].note == note
        and "No such charge" in state.ops.resolutions[0].problem
    )
    assert harness.backend.fields[placed.order_id]["resolution_note"] == note
    calls = harness.backend.refund_calls
    await asyncio.sleep(1.2)  # several ATTENTION_RETRY periods
    assert harness.backend.refund_calls == calls  # no more tries
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.NEEDS_ATTENTION) is False
    with pytest.raises(WorkflowUpdateFailedError) as nothing:
        await handle.execute_update(OrderWorkflow.resolve, ResolveOrder(note=note))
    assert "Nothing to resolve" in str(nothing.value.cause)


async def test_stripe_refusing_the_key_parks_with_a_configuration_reason(
    harness: Harness,
) -> None:
    _, handle, _ = await harness.paid()
    harness.backend.refuse_refund = (
        "Stripe refused this service's API key (HTTP 401): a configuration error"
    )
    harness.backend.refuse_refund_as = Failure.STRIPE_KEY_REFUSED
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
    state = await eventually(handle, lambda s: s.ops.attention is not None)
    assert "configuration error" in (state.ops.attention or "")
    assert state.ops.retry_at is not None  # tried again once the key is put right


async def test_a_cancellation_recorded_mid_charge_is_written_on_the_row(
    harness: Harness,
) -> None:
    """Issue 29, item 5: the 202 the customer was given survives a terminate and resume (the
    resumed run is built from the row, activities/order_resume.py)."""
    placed, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    harness.backend.intents[intent.payment_intent_id].status = "processing"
    with pytest.raises(WorkflowUpdateFailedError):
        await asyncio.wait_for(handle.execute_update(OrderWorkflow.cancel, CancelOrder()), 10)
    row = harness.backend.fields[placed.order_id]
    assert row["pending_cancel_reason"] == "Cancelled by customer"
    assert harness.backend.rows[placed.order_id] == S.PaymentProcessing
