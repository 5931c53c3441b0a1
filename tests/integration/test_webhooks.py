"""Signed webhooks: forged, duplicate, stale and foreign events."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import stripe
from temporalio.client import Client, WorkflowHandle

from tests.support.integration import (
    GOOD_CARD,
    WEBHOOK_SECRET,
    order_body,
    pay_with_card,
    post_event,
    succeeded_event,
    wait_for_status,
)
from tests.support.stripe_signing import sign
from vult.domain.contracts import OrderState
from workflows.order import OrderWorkflow, workflow_id_for


async def pending_payment(http: httpx.AsyncClient) -> tuple[str, str]:
    order = (await http.post("/api/orders", json=order_body())).json()
    intent = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    return order["orderId"], intent["paymentIntentId"]


async def test_a_forged_signature_is_401_and_changes_nothing(http: httpx.AsyncClient) -> None:
    order_id, pi = await pending_payment(http)
    payload = succeeded_event(pi, order_id)
    for signature in ("", sign(payload, secret="whsec_attacker"), "t=1,v1=deadbeef"):
        response = await post_event(http, payload, signature)
        assert response.status_code == 401
        assert "error" in response.json()
    # The emulator was never told the card was paid; a forged "succeeded" must not count.
    assert (await http.get(f"/api/orders/{order_id}")).json()["status"] == "PaymentProcessing"


async def test_a_stale_timestamp_is_401(http: httpx.AsyncClient) -> None:
    order_id, pi = await pending_payment(http)
    payload = succeeded_event(pi, order_id)
    old = sign(payload, secret=WEBHOOK_SECRET, timestamp=int(time.time()) - 3600)
    future = sign(payload, secret=WEBHOOK_SECRET, timestamp=int(time.time()) + 3600)
    assert (await post_event(http, payload, old)).status_code == 401
    assert (await post_event(http, payload, future)).status_code == 401


async def test_a_signed_success_the_payment_intent_does_not_confirm_is_not_believed(
    http: httpx.AsyncClient, temporal_client: Client
) -> None:
    """A correctly signed event is still checked against Stripe before it changes an order."""
    order_id, pi = await pending_payment(http)
    payload = succeeded_event(pi, order_id)
    assert (
        await post_event(http, payload, sign(payload, secret=WEBHOOK_SECRET))
    ).status_code == 200
    handle: WorkflowHandle[OrderWorkflow, OrderState] = temporal_client.get_workflow_handle_for(
        OrderWorkflow.run, workflow_id_for(uuid.UUID(order_id))
    )
    for _ in range(100):
        state = await handle.query(OrderWorkflow.state)
        if state.payments.last_note:
            break
        await asyncio.sleep(0.1)
    assert state.payments.last_note == f"{pi} is requires_payment_method: nothing to do"
    assert (await http.get(f"/api/orders/{order_id}")).json()["status"] == "PaymentProcessing"


async def test_a_duplicate_delivery_is_acknowledged_and_applied_once(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    order_id, pi = await pending_payment(http)
    await pay_with_card(stripe_client, pi, GOOD_CARD)
    confirmed = await wait_for_status(http, order_id, "Confirmed")
    payload = succeeded_event(pi, order_id, event_id="evt_duplicate_" + order_id)
    for _ in range(3):
        response = await post_event(http, payload, sign(payload, secret=WEBHOOK_SECRET))
        assert response.status_code == 200
    handle: WorkflowHandle[OrderWorkflow, OrderState] = temporal_client.get_workflow_handle_for(
        OrderWorkflow.run, workflow_id_for(uuid.UUID(order_id))
    )
    state = await handle.query(OrderWorkflow.state)
    assert state.seen_event_ids.count("evt_duplicate_" + order_id) == 1
    after = (await http.get(f"/api/orders/{order_id}")).json()
    assert after == confirmed  # same status, same updatedDate


async def test_an_event_for_an_unknown_order_or_type_is_acknowledged(
    http: httpx.AsyncClient,
) -> None:
    payload = succeeded_event("pi_unknown", str(uuid.uuid4()))
    response = await post_event(http, payload, sign(payload, secret=WEBHOOK_SECRET))
    assert response.status_code == 200
    other = json.dumps(
        {
            "id": "evt_x",
            "object": "event",
            "type": "customer.created",
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    ).encode()
    assert (await post_event(http, other, sign(other, secret=WEBHOOK_SECRET))).status_code == 200
