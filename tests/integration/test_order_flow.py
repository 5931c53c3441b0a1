"""Spec 8.2 integration tests and the payment paths, on the real programs."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal

import httpx
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.integration import (
    DECLINED_CARD,
    GOOD_CARD,
    RUNNER,
    SOCKS,
    RunningWorker,
    count_rows,
    order_body,
    pay_with_card,
    wait_for_status,
)


async def place(http: httpx.AsyncClient, **changes: object) -> dict:
    response = await http.post("/api/orders", json=order_body(**changes))
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_order_with_valid_products_returns_order(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/orders",
        json=order_body(
            billingAddress={
                "fullName": "Bo Lee",
                "addressLine1": "9 Elm St",
                "city": "Shelbyville",
                "state": "IL",
                "postalCode": "62565",
                "country": "US",
            }
        ),
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/api/orders/{order['orderId']}"
    assert re.fullmatch(r"VLT-\d{8}-\d{6}", order["orderNumber"])
    assert order["status"] == "Pending"
    assert (order["subTotal"], order["tax"], order["shippingCost"], order["total"]) == (
        272.33,
        21.79,
        0,
        294.12,
    )
    assert order["currency"] == "USD"
    runner, socks = order["lineItems"]
    assert runner == {
        "lineItemId": runner["lineItemId"],
        "productId": RUNNER,
        "productName": "Vult Runner",
        "productSize": "10",
        "productImageUrl": "/images/vult-runner-1.jpg",
        "unitPrice": 129.99,
        "quantity": 2,
        "subTotal": 259.98,
        # Additive: nothing shipped or returned yet.
        "quantityShipped": None,
        "quantityReturned": 0,
    }
    assert (socks["productId"], socks["productSize"], socks["unitPrice"]) == (SOCKS, "L", 12.35)
    assert order["shippingAddress"]["addressLine1"] == "1 Main St"
    assert order["billingAddress"]["city"] == "Shelbyville"
    assert order["createdDate"].endswith("Z")

    fetched = await http.get(f"/api/orders/{order['orderId']}")
    assert fetched.status_code == 200
    assert fetched.json() == order


async def test_create_payment_for_pending_order_returns_client_secret(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order = await place(http)
    response = await http.post(f"/api/orders/{order['orderId']}/payment")
    assert response.status_code == 200, response.text
    intent = response.json()
    assert intent["clientSecret"].startswith(intent["paymentIntentId"])
    assert (intent["amount"], intent["currency"]) == (29412, "usd")

    again = await http.post(f"/api/orders/{order['orderId']}/payment")
    assert again.json() == intent  # the open PaymentIntent, not a second one

    at_stripe = await stripe_client.v1.payment_intents.retrieve_async(intent["paymentIntentId"])
    assert at_stripe.amount == 29412
    assert at_stripe.metadata["order_id"] == order["orderId"]
    assert at_stripe.metadata["order_number"] == order["orderNumber"]
    assert (await http.get(f"/api/orders/{order['orderId']}")).json()["status"] == (
        "PaymentProcessing"
    )


async def test_webhook_payment_succeeded_updates_order_status(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, engine: AsyncEngine
) -> None:
    order = await place(http)
    intent = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    assert await pay_with_card(stripe_client, intent["paymentIntentId"], GOOD_CARD) == "succeeded"
    confirmed = await wait_for_status(http, order["orderId"], "Confirmed")
    assert confirmed["paymentErrorMessage"] is None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT stripe_payment_intent_id, stripe_payment_status FROM orders "
                    "WHERE order_id = :id"
                ),
                {"id": order["orderId"]},
            )
        ).one()
    assert tuple(row) == (intent["paymentIntentId"], "succeeded")


async def test_a_declined_card_fails_the_order_and_a_new_attempt_can_succeed(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order = await place(http)
    first = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    outcome = await pay_with_card(stripe_client, first["paymentIntentId"], DECLINED_CARD)
    assert outcome == "declined: Your card was declined."
    failed = await wait_for_status(http, order["orderId"], "Failed")
    assert failed["paymentErrorMessage"] == "Your card was declined."

    second = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    assert second["paymentIntentId"] != first["paymentIntentId"]
    assert await pay_with_card(stripe_client, second["paymentIntentId"], GOOD_CARD) == "succeeded"
    confirmed = await wait_for_status(http, order["orderId"], "Confirmed")
    assert confirmed["paymentErrorMessage"] is None


async def test_payment_is_refused_once_the_order_is_confirmed(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order = await place(http)
    intent = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    await pay_with_card(stripe_client, intent["paymentIntentId"], GOOD_CARD)
    await wait_for_status(http, order["orderId"], "Confirmed")
    response = await http.post(f"/api/orders/{order['orderId']}/payment")
    assert response.status_code == 400
    assert response.json() == {"error": "Cannot process payment for order with status: Confirmed"}


async def test_the_order_survives_a_worker_restart_while_stripe_confirms_the_payment(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, worker: RunningWorker
) -> None:
    order = await place(http)
    intent = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    await worker.stop()
    try:
        # The webhook arrives while no worker runs: Temporal keeps the signal.
        assert await pay_with_card(stripe_client, intent["paymentIntentId"], GOOD_CARD) == (
            "succeeded"
        )
        stuck = (await http.get(f"/api/orders/{order['orderId']}")).json()
        assert stuck["status"] == "PaymentProcessing"
    finally:
        await worker.start()
    await wait_for_status(http, order["orderId"], "Confirmed", timeout=30)


async def test_a_retried_create_with_the_same_idempotency_key_places_one_order(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = f"checkout-{uuid.uuid4()}"
    first = await http.post("/api/orders", json=order_body(), headers={"Idempotency-Key": key})
    second = await http.post("/api/orders", json=order_body(), headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM orders WHERE order_id = :id"),
                {"id": first.json()["orderId"]},
            )
        ).scalar_one()
    assert count == 1


async def test_products_are_listed_for_the_cart(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/products")
    assert response.status_code == 200
    products = {p["productId"]: p for p in response.json()}
    assert products[RUNNER] == {
        "productId": RUNNER,
        "name": "Vult Runner",
        "size": "10",
        "estimatedMSRP": 129.99,
        "imageUrls": ["/images/vult-runner-1.jpg", "/images/vult-runner-2.jpg"],
    }
    assert all(isinstance(p["estimatedMSRP"], (int, float)) for p in products.values())
    assert Decimal(str(products[SOCKS]["estimatedMSRP"])) == Decimal("12.35")


async def test_a_key_sent_again_with_a_different_request_is_refused_and_writes_nothing(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = f"checkout-{uuid.uuid4()}"
    first = await http.post("/api/orders", json=order_body(), headers={"Idempotency-Key": key})
    assert first.status_code == 201
    before = await count_rows(engine)
    other = order_body(customerEmail="mallory@example.com")
    refused = await http.post("/api/orders", json=other, headers={"Idempotency-Key": key})
    assert refused.status_code == 422
    assert refused.json() == {"errors": ["Idempotency-Key was used with a different request"]}
    assert "ann@example.com" not in refused.text  # the first order is not disclosed
    assert await count_rows(engine) == before
    # The same request, its JSON written differently, is still the same order.
    same = json.dumps(dict(reversed(list(order_body().items()))), indent=2)
    again = await http.post(
        "/api/orders",
        content=same,
        headers={"Idempotency-Key": key, "content-type": "application/json"},
    )
    assert again.status_code == 201 and again.json()["orderId"] == first.json()["orderId"]
