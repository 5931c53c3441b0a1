"""Cancellation (with refunds) and fulfilment, through the workflow's updates."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.support.workflows import Harness, event, eventually
from vult.domain.contracts import CancelOrder, OrderState, ShipOrder
from vult.domain.failures import Failure
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow

S = OrderStatus


async def confirmed(harness: Harness) -> WorkflowHandle[OrderWorkflow, OrderState]:
    _, handle, _ = await harness.paid()
    return handle


async def refused(handle: WorkflowHandle, update: Any, *args: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, *args)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Failure.INVALID_TRANSITION
    return cause.message


async def test_a_pending_order_is_cancelled_without_touching_stripe(harness: Harness) -> None:
    placed, handle = await harness.place()
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="changed my mind"))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Cancelled and state.cancelling.reason == "changed my mind"
    assert harness.backend.fields[placed.order_id]["cancellation_reason"] == "changed my mind"
    assert harness.backend.cancel_calls == 0 and harness.backend.refunds == {}


async def test_cancelling_while_paying_cancels_the_payment_intent(harness: Harness) -> None:
    placed, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
    assert harness.backend.intents[intent.payment_intent_id].status == "canceled"
    assert harness.backend.rows[placed.order_id] == S.Cancelled
    assert harness.backend.fields[placed.order_id]["stripe_payment_status"] == "canceled"
    assert harness.backend.refunds == {}


async def test_cancelling_while_paying_refunds_a_payment_that_already_succeeded(
    harness: Harness,
) -> None:
    placed, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    harness.backend.intents[intent.payment_intent_id].status = "succeeded"  # webhook not yet in
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
    assert list(harness.backend.refunds.values()) == [intent.payment_intent_id]
    # The late webhook changes nothing and refunds nothing more.
    await handle.signal(OrderWorkflow.payment_event, event(intent.payment_intent_id))
    state = await eventually(handle, lambda s: "already refunded" in (s.payments.last_note or ""))
    assert state.status == S.Cancelled
    assert len(harness.backend.refunds) == 1
    assert harness.backend.fields[placed.order_id]["stripe_refund_id"] == (
        f"re_{intent.payment_intent_id}"
    )


async def test_cancelling_a_confirmed_order_refunds_it_in_full_once(harness: Harness) -> None:
    handle = await confirmed(harness)
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Cancelled
    assert len(harness.backend.refunds) == 1
    (pi,) = state.money.refunds
    assert state.money.refunds[pi].status == "pending"
    # Stripe reports the refund done: it is recorded as complete.
    await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.refunded"))
    state = await eventually(handle, lambda s: s.money.refunds[pi].status == "succeeded")
    assert harness.backend.fields[state_order_id(handle)]["stripe_payment_status"] == "refunded"


def state_order_id(handle: WorkflowHandle) -> uuid.UUID:
    return uuid.UUID(handle.id.removeprefix("order-"))


async def test_a_failed_order_can_be_cancelled(harness: Harness) -> None:
    _, handle, _ = await harness.paid(succeeded=False)
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
    assert (await handle.query(OrderWorkflow.state)).status == S.Cancelled
    assert harness.backend.refunds == {}


async def test_fulfilment_runs_to_delivered_and_the_workflow_completes(harness: Harness) -> None:
    handle = await confirmed(harness)
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(
        OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1Z999AA10123456784")
    )
    order_id = state_order_id(handle)
    assert harness.backend.fields[order_id]["tracking_number"] == "1Z999AA10123456784"
    assert harness.backend.fields[order_id]["shipping_carrier"] == "UPS"
    await handle.execute_update(OrderWorkflow.deliver)
    # Open for returns until the return window closes, then complete.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    result = await handle.result()
    assert result.status == S.Delivered and result.fulfilment.delivered_at is not None
    assert harness.backend.changes[-3:] == [
        (S.Confirmed, S.Processing),
        (S.Processing, S.Shipped),
        (S.Shipped, S.Delivered),
    ]


@pytest.mark.parametrize("stage", [S.Processing, S.Shipped])
async def test_an_order_in_fulfilment_cannot_be_cancelled(
    harness: Harness, stage: OrderStatus
) -> None:
    handle = await confirmed(harness)
    await handle.execute_update(OrderWorkflow.start_processing)
    if stage == S.Shipped:
        await handle.execute_update(
            OrderWorkflow.ship, ShipOrder(carrier="DHL", tracking_number="1")
        )
    message = await refused(handle, OrderWorkflow.cancel, CancelOrder())
    assert message == f"Cannot cancel order with status: {stage}"
    assert harness.backend.refunds == {}


async def test_a_cancel_sent_again_does_nothing_and_a_cancelled_order_is_not_fulfilled(
    harness: Harness,
) -> None:
    placed, handle = await harness.place()
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
    changes = list(harness.backend.changes)
    # Safe to send again (docs/http.md): answered as the first was, nothing more done.
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="again"))
    state = await handle.query(OrderWorkflow.state)
    assert state.cancelling.reason == "Cancelled by customer"
    assert harness.backend.changes == changes
    assert harness.backend.fields[placed.order_id]["cancellation_reason"] == (
        "Cancelled by customer"
    )
    assert await refused(handle, OrderWorkflow.start_processing) == (
        "Cannot start processing an order with status: Cancelled"
    )


async def test_fulfilment_steps_out_of_order_are_refused(harness: Harness) -> None:
    _, handle = await harness.place()
    assert "Pending" in await refused(handle, OrderWorkflow.start_processing)
    handle = await confirmed(harness)
    assert "Confirmed" in await refused(
        handle, OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1Z")
    )
    assert "Confirmed" in await refused(handle, OrderWorkflow.deliver)
    await handle.execute_update(OrderWorkflow.start_processing)
    message = await refused(handle, OrderWorkflow.ship, ShipOrder(carrier=" ", tracking_number="1"))
    assert message == "A carrier of 1 to 100 characters is required"
