"""A return in the workflow: refunded once per Idempotency-Key, even when the first try's
refund went through at Stripe and its answer (or the row write after it) was lost."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.support.workflows import Harness
from vult.domain.contracts import ReturnRequest, ShipOrder
from workflows.order import OrderWorkflow, workflow_id_for


async def test_a_return_whose_refund_stripe_already_holds_is_recorded_not_refused(
    harness: Harness,
) -> None:
    placed, handle, intent = await harness.paid()
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1"))
    assert handle.id == workflow_id_for(placed.order_id)
    # The first try refunded 90.00 under the return's key; its answer never came back.
    digest = hashlib.sha256(b"return-1").hexdigest()[:32]
    key = f"order:{placed.order_id}:return:{digest}"
    harness.backend.refunds[key] = intent.payment_intent_id
    harness.backend.refund_amounts[key] = 9000
    request = ReturnRequest(key="return-1", reason="Too small", amount=Decimal("90.00"))
    # Only 18.00 is held now: asking 90.00 again is the same return, not a larger one.
    record = await handle.execute_update(OrderWorkflow.take_return, request)
    assert record.amount == Decimal("90.00") and harness.backend.refund_calls == 0
    assert [r.record.key for r in harness.backend.returns] == ["return-1"]
    # Another key asking for more than is held is refused.
    other = request.model_copy(update={"key": "return-2"})
    with pytest.raises(WorkflowUpdateFailedError) as refusal:
        await handle.execute_update(OrderWorkflow.take_return, other)
    assert "more than is still held" in str(refusal.value.cause)
    assert harness.backend.refund_calls == 0
