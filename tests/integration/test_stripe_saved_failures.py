"""Stripe keeps a 5xx under its idempotency key and replays it to every retry with that key
(docs.stripe.com/api/idempotent_requests). A money step that meets one reads Stripe's state
and goes on under a fresh key: the order still gets a PaymentIntent, and work Stripe did
before answering 5xx is found again, never done twice. On the real programs, with the
emulator's fault control (dev/stack/stripe_idempotency.py, /_vult/fail_next)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe

from tests.support.integration import (
    GOOD_CARD,
    OPS,
    RunningWorker,
    confirmed_order,
    emulator_control,
    order_body,
    pay_with_card,
    place,
    refunds_at_stripe,
    wait_for_status,
)
from vult.process.settings import Settings


async def fail_next(settings: Settings, path: str, *, after: bool) -> None:
    """The next POST to `path` answers 500 (after doing its work, with `after`)."""
    body = {"path": path, "status": 500, "count": 1, "after": after}
    await emulator_control(settings, "/_vult/fail_next", body)


@pytest.fixture
async def shop(at_shipment_url: str, worker: RunningWorker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=at_shipment_url, timeout=30) as client:
        yield client


async def test_a_saved_5xx_on_the_payment_intent_create_does_not_block_paying(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    order = await place(http)
    await fail_next(settings, "/v1/payment_intents", after=False)
    answer = await http.post(f"/api/orders/{order['orderId']}/payment")
    assert answer.status_code == 200, answer.text
    pi = answer.json()["paymentIntentId"]
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
    shown = await wait_for_status(http, order["orderId"], "Confirmed")
    assert shown["paymentStatus"] == "succeeded"


async def test_a_refund_stripe_made_before_answering_5xx_is_found_and_not_made_again(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    await fail_next(settings, "/v1/refunds", after=True)
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    shown = await wait_for_status(http, order["orderId"], "Cancelled")
    refunds = await refunds_at_stripe(stripe_client, pi)
    assert [r.amount for r in refunds] == [round(float(order["total"]) * 100)]
    assert shown["paymentStatus"] in ("refunded", "refund_pending")


async def test_a_capture_stripe_made_before_answering_5xx_is_taken_as_made(
    shop: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    placed = await shop.post("/api/orders", json=order_body())
    order: dict[str, Any] = placed.json()
    pi = (await shop.post(f"/api/orders/{order['orderId']}/payment")).json()["paymentIntentId"]
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "requires_capture"
    await wait_for_status(shop, order["orderId"], "Confirmed")
    oid = order["orderId"]
    assert (await shop.post(f"/api/ops/orders/{oid}/processing", headers=OPS)).status_code == 204
    await fail_next(settings, f"/v1/payment_intents/{pi}/capture", after=True)
    shipped = await shop.post(
        f"/api/ops/orders/{oid}/ship", json={"carrier": "UPS", "trackingNumber": "1Z9"}, headers=OPS
    )
    assert shipped.status_code == 204, shipped.text
    shown = (await shop.get(f"/api/orders/{oid}")).json()
    assert shown["status"] == "Shipped"
    intent = await stripe_client.v1.payment_intents.retrieve_async(pi)
    assert intent.status == "succeeded" and intent.amount_received == intent.amount
    assert await refunds_at_stripe(stripe_client, pi) == []
