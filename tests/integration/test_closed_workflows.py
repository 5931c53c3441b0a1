"""After an order's workflow closes: a late payment is refunded exactly once, a payable
PaymentIntent is cancelled, and a retried create finds the order instead of starting it
again. Also: a retry after a decline closes the declined PaymentIntent first. On the real
programs, with the emulator's own records checked."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe.params import PaymentIntentCreateParams
from temporalio.client import Client, WorkflowExecutionStatus

from api.order_commands import key_order_ids, order_id_for_key
from tests.support.integration import (
    DECLINED_CARD,
    GOOD_CARD,
    WEBHOOK_SECRET,
    closed,
    count_rows,
    delivered_order,
    order_body,
    pay,
    pay_with_card,
    place,
    post_event,
    refunds_at_stripe,
    succeeded_event,
    wait_for_status,
)
from tests.support.stripe_signing import sign
from tests.support.workflows import order_request
from vult.domain.contracts import OrderWorkflowInput
from workflows.late_payment import late_payment_workflow_id
from workflows.order import OrderWorkflow, workflow_id_for


async def stray_intent(client: stripe.StripeClient, order: dict[str, Any]) -> str:
    """A PaymentIntent for the order that its workflow never created (an old checkout tab,
    a payment made by hand in the Dashboard)."""
    intent = await client.v1.payment_intents.create_async(
        params=PaymentIntentCreateParams(
            amount=1000,
            currency="usd",
            allowed_payment_method_types=["card"],
            metadata={"order_id": order["orderId"], "order_number": order["orderNumber"]},
        )
    )
    return intent.id


async def eventually_refunded(client: stripe.StripeClient, pi: str, timeout: float = 20.0) -> list:
    for _ in range(int(timeout / 0.2)):
        refunds = await refunds_at_stripe(client, pi)
        if refunds:
            return refunds
        await asyncio.sleep(0.2)
    raise AssertionError(f"{pi} was not refunded")


async def test_a_payment_after_delivery_is_refunded_exactly_once(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    order = await delivered_order(http, stripe_client)
    await closed(temporal_client, workflow_id_for(uuid.UUID(order["orderId"])))
    pi = await stray_intent(stripe_client, order)
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"

    (refund,) = await eventually_refunded(stripe_client, pi)
    assert refund.amount == 1000
    late = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    await closed(temporal_client, late.id)
    # The same event again (Stripe retries; a replayed webhook): still one refund.
    payload = succeeded_event(pi, order["orderId"])
    response = await post_event(http, payload, sign(payload, secret=WEBHOOK_SECRET))
    assert response.status_code == 200
    await asyncio.sleep(1.0)
    await closed(temporal_client, late.id)
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1
    # The order keeps its own payment.
    assert (await http.get(f"/api/orders/{order['orderId']}")).json()["status"] == "Delivered"


async def test_a_payable_intent_of_a_closed_order_is_cancelled(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    order = await delivered_order(http, stripe_client)
    await closed(temporal_client, workflow_id_for(uuid.UUID(order["orderId"])))
    pi = await stray_intent(stripe_client, order)
    await pay_with_card(stripe_client, pi, DECLINED_CARD)  # payment_failed: still payable
    for _ in range(100):
        if (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "canceled":
            break
        await asyncio.sleep(0.2)
    assert (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "canceled"
    assert await refunds_at_stripe(stripe_client, pi) == []


async def test_retrying_after_a_decline_cancels_the_declined_payment_intent(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order = await place(http)
    first = await pay(http, order)
    await pay_with_card(stripe_client, first, DECLINED_CARD)
    await wait_for_status(http, order["orderId"], "Failed")
    second = await pay(http, order)
    assert second != first
    assert (await stripe_client.v1.payment_intents.retrieve_async(first)).status == "canceled"
    assert await pay_with_card(stripe_client, second, GOOD_CARD) == "succeeded"
    await wait_for_status(http, order["orderId"], "Confirmed")


async def test_a_create_retried_after_the_workflow_closed_returns_the_same_order(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    key = f"checkout-{uuid.uuid4()}"
    order = await delivered_order(http, stripe_client, key=key)
    workflow_id = workflow_id_for(uuid.UUID(order["orderId"]))
    await closed(temporal_client, workflow_id)
    first_run = (await temporal_client.get_workflow_handle(workflow_id).describe()).run_id

    again = await http.post("/api/orders", json=order_body(), headers={"Idempotency-Key": key})
    assert again.status_code == 201, again.text
    assert again.json()["orderId"] == order["orderId"]
    assert again.json()["status"] == "Delivered"
    described = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert described.run_id == first_run  # no second run adopting the row
    assert described.status == WorkflowExecutionStatus.COMPLETED


async def test_a_key_whose_request_placed_nothing_is_refused_with_a_clear_error(
    http: httpx.AsyncClient, temporal_client: Client, engine: AsyncEngine
) -> None:
    key = f"checkout-{uuid.uuid4()}"
    now = datetime.now(UTC)
    order_id = order_id_for_key(key_order_ids(key, now), now, previous_created=None)
    # An earlier request with this key started the order's workflow, which closed without
    # writing a row (here: nobody ran it, then it was ended).
    handle = await temporal_client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=order_id, request=order_request()),
        id=workflow_id_for(order_id),
        task_queue=f"nobody-polls-{uuid.uuid4()}",
    )
    await handle.terminate("an earlier request that placed nothing")
    before = await count_rows(engine)
    response = await http.post("/api/orders", json=order_body(), headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert "placed no order" in response.json()["errors"][0]
    assert await count_rows(engine) == before
