"""A shipment whose money moved and whose row write then failed, sent again (as the 503 says
is safe): it carries on the shipment that moved the money, and moves none again (issue 29,
item 1). The stand-in order: 2 x 50.00 + 8.00 tax = 108.00; one unit's share is 54.00."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from tests.support.workflows import Harness, event, eventually
from vult.domain.contracts import LineQuantity, OrderState, ShipOrder
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow

S = OrderStatus
ONE_UNIT = ShipOrder(
    carrier="UPS", tracking_number="1", line_items=[LineQuantity(line_item_id="line-1", quantity=1)]
)
EVERYTHING = ShipOrder(carrier="UPS", tracking_number="1")


async def ship_once_failing(
    harness: Harness, handle: WorkflowHandle[OrderWorkflow, OrderState], shipment: ShipOrder
) -> None:
    """The shipment moves its money, then the Processing -> Shipped write is refused."""
    await handle.execute_update(OrderWorkflow.start_processing)
    harness.backend.refuse_status = S.Shipped
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(OrderWorkflow.ship, shipment)
    harness.backend.refuse_status = None


def held(harness: Harness, pi: str) -> int:
    intent = harness.backend.intents[pi]
    captured = intent.captured if intent.captured is not None else intent.amount
    refunded = sum(
        harness.backend.refund_amounts.get(k, 0)
        for k, p in harness.backend.refunds.items()
        if p == pi
    )
    return (captured if intent.status == "succeeded" else 0) - refunded


async def test_at_shipment_a_repeated_partial_shipment_refunds_nothing_of_its_capture(
    harness: Harness,
) -> None:
    _, handle = await harness.place(capture="at_shipment")
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    harness.backend.intents[pi].status = "requires_capture"
    await handle.signal(
        OrderWorkflow.payment_event, event(pi, "payment_intent.amount_capturable_updated")
    )
    await eventually(handle, lambda s: s.status == S.Confirmed)
    await ship_once_failing(harness, handle, ONE_UNIT)
    assert harness.backend.intents[pi].captured == 5400

    await handle.execute_update(OrderWorkflow.ship, ONE_UNIT)
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Shipped
    assert held(harness, pi) == 5400 and harness.backend.refund_calls == 0


async def test_automatic_capture_a_shipment_of_other_lines_after_a_refunded_share_is_refused(
    harness: Harness,
) -> None:
    _, handle, intent = await harness.paid()
    pi = intent.payment_intent_id
    await ship_once_failing(harness, handle, ONE_UNIT)
    assert held(harness, pi) == 5400  # the unshipped unit's share went back

    # Everything cannot ship now: half of it was refunded for the first shipment.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(OrderWorkflow.ship, EVERYTHING)
    assert "same shipment" in str(refused.value.cause)
    # The same shipment again goes through, refunding nothing more.
    await handle.execute_update(OrderWorkflow.ship, ONE_UNIT)
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Shipped and held(harness, pi) == 5400
    assert harness.backend.refund_calls == 1


async def test_a_capture_made_in_full_outside_then_a_partial_shipment_refunds_the_rest(
    harness: Harness,
) -> None:
    """Issue 29, item 6: what is held after a shipment is its share, whoever captured."""
    _, handle = await harness.place(capture="at_shipment")
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    harness.backend.intents[pi].status = "requires_capture"
    await handle.signal(
        OrderWorkflow.payment_event, event(pi, "payment_intent.amount_capturable_updated")
    )
    await eventually(handle, lambda s: s.status == S.Confirmed)
    # Captured in full by hand in the Dashboard; its event is lost.
    harness.backend.intents[pi].status, harness.backend.intents[pi].captured = "succeeded", 10800
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(OrderWorkflow.ship, ONE_UNIT)
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Shipped
    assert held(harness, pi) == 5400 and harness.backend.refund_calls == 1
