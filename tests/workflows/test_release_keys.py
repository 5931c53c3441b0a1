"""A release of an authorization is never answered by an earlier ask's saved answer.
Stripe replays a key's first answer for 24 hours: a customer's cancel that met the payment
mid-charge saved `processing` under the first cancel key; when the card is then authorized
and the recorded cancellation completes, a release under that same key would be answered
`processing` again and release nothing (a hold left on a cancelled order's card)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowUpdateFailedError

from tests.support.workflows import Backend, Harness, event, eventually, stand_in_worker
from vult.domain.contracts import CancelOrder, OrderTiming
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow


async def test_a_cancel_recorded_mid_charge_releases_the_authorization_that_follows(
    temporal_client: Client, task_queue: str
) -> None:
    backend = Backend()
    async with stand_in_worker(temporal_client, task_queue, backend):
        # The recorded cancellation is asked again a second later (30 s in production).
        timing = OrderTiming(in_flight_retry=timedelta(seconds=1))
        await cancelled_mid_charge(Harness(temporal_client, task_queue, backend, timing=timing))


async def cancelled_mid_charge(harness: Harness) -> None:
    placed, handle = await harness.place(capture="at_shipment")
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    fake = harness.backend.intents[pi]
    fake.status = "processing"  # the customer's bank is still deciding
    try:
        await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
        raise AssertionError("a cancel mid-charge is recorded (202), not done")
    except WorkflowUpdateFailedError:
        pass
    await eventually(handle, lambda s: s.cancelling.pending is not None)
    fake.status = "requires_capture"  # then the bank authorizes
    await handle.signal(
        OrderWorkflow.payment_event, event(pi, "payment_intent.amount_capturable_updated")
    )
    await eventually(handle, lambda s: s.status == OrderStatus.Cancelled)
    assert fake.status == "canceled", f"the authorization was not released: {fake.status}"
    row = harness.backend.fields[placed.order_id]
    assert row.get("stripe_payment_status") == "canceled", row
    await handle.terminate("test over")
