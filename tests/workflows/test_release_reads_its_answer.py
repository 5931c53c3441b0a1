"""Issue 29, item 9: a release of an authorization reads Stripe's answer. An authorization
for the wrong amount is released and its order fails; if Stripe answers that it was
captured meanwhile (by hand, in the Dashboard), the money pays nothing and is refunded, and
the row records what Stripe said. Before, the row said "canceled" whatever the answer, and
the captured money stayed with the shop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from temporalio import activity
from temporalio.client import Client

from tests.support.workflows import Backend, Harness, event, eventually, stand_in_worker
from vult.domain.contracts import CancelPaymentIntent, PaymentIntentSnapshot
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow


@dataclass
class CapturedMeanwhile(Backend):
    """A Stripe where someone captures the authorization just before our release reaches
    it: the release answers `succeeded`."""

    @activity.defn(name="cancel_payment_intent")
    async def cancel_payment_intent(self, req: CancelPaymentIntent) -> PaymentIntentSnapshot:
        self.cancel_calls += 1
        intent = self.intents[req.payment_intent_id]
        if intent.status == "requires_capture":
            intent.status, intent.captured = "succeeded", intent.amount
        return await self.retrieve_payment_intent(req.payment_intent_id)


@pytest.fixture
async def captured_meanwhile(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    backend = CapturedMeanwhile()
    async with stand_in_worker(temporal_client, task_queue, backend):
        yield Harness(temporal_client, task_queue, backend)


async def test_a_release_answered_captured_is_refunded(captured_meanwhile: Harness) -> None:
    h = captured_meanwhile
    placed, handle = await h.place(capture="at_shipment")
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    fake = h.backend.intents[pi]
    fake.amount, fake.status = 999, "requires_capture"  # authorized for another amount
    await handle.signal(
        OrderWorkflow.payment_event, event(pi, "payment_intent.amount_capturable_updated")
    )
    await eventually(handle, lambda s: s.status == OrderStatus.Failed)
    await eventually(handle, lambda s: bool(s.money.refunds) or s.ops.attention is not None)
    assert h.backend.cancel_calls == 1
    assert list(h.backend.refunds.values()) == [pi], "the captured money was not refunded"
    row = h.backend.fields[placed.order_id]
    assert row["stripe_payment_status"] != "canceled", row
    await handle.terminate("test over")
