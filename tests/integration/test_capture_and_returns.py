"""Charge when it ships, ship part of an order, take returns: on the real programs, with
an API placing orders in `at_shipment` capture mode beside the session's (automatic)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest
import stripe
from temporalio.client import Client

from tests.support.integration import (
    GOOD_CARD,
    OPS,
    RunningWorker,
    emulator_control,
    order_body,
    pay_with_card,
    refunds_at_stripe,
    wait_for_status,
)
from vult.process.settings import Settings
from vult.temporal import search_attributes as sa
from workflows.order import workflow_id_for

SHIP = {"carrier": "UPS", "trackingNumber": "1Z999"}


@pytest.fixture
async def shop(at_shipment_url: str, worker: RunningWorker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=at_shipment_url, timeout=30) as client:
        yield client


async def paid(http: httpx.AsyncClient, client: stripe.StripeClient) -> tuple[dict[str, Any], str]:
    placed = await http.post("/api/orders", json=order_body())
    assert placed.status_code == 201, placed.text
    order = placed.json()
    answer = await http.post(f"/api/orders/{order['orderId']}/payment")
    pi = answer.json()["paymentIntentId"]
    status = await pay_with_card(client, pi, GOOD_CARD)
    assert status in ("requires_capture", "succeeded"), status
    shown = await wait_for_status(http, order["orderId"], "Confirmed")
    return shown, pi


def cents(amount: Any) -> int:
    return int(Decimal(str(amount)) * 100)


def share(order: dict[str, Any], line: dict[str, Any], *, shipping: bool) -> int:
    """The rule written out again (vult/domain/fulfilment.py): the line's merchandise, the
    order's tax in proportion (half to even), the whole shipping with a shipment."""
    merchandise = Decimal(str(line["unitPrice"])) * line["quantity"]
    tax = (Decimal(str(order["tax"])) * merchandise / Decimal(str(order["subTotal"]))).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_EVEN
    )
    ship = Decimal(str(order["shippingCost"])) if shipping else Decimal(0)
    return cents(merchandise + tax + ship)


async def charge_of(client: stripe.StripeClient, pi: str) -> dict[str, Any]:
    intent = await client.v1.payment_intents.retrieve_async(pi)
    charge = intent.to_dict().get("latest_charge")
    charge_id = charge["id"] if isinstance(charge, dict) else charge
    assert isinstance(charge_id, str), intent
    return (await client.v1.charges.retrieve_async(charge_id)).to_dict()


async def ship(
    http: httpx.AsyncClient, order: dict[str, Any], lines: list[dict[str, Any]] | None = None
) -> httpx.Response:
    oid = order["orderId"]
    assert (await http.post(f"/api/ops/orders/{oid}/processing", headers=OPS)).status_code == 204
    body = {**SHIP, **({"lineItems": lines} if lines is not None else {})}
    return await http.post(f"/api/ops/orders/{oid}/ship", json=body, headers=OPS)


async def test_a_paid_order_is_confirmed_with_nothing_captured_and_shipping_captures_it(
    shop: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await paid(shop, stripe_client)
    assert order["paymentStatus"] == "authorized" and order["amountCaptured"] is None
    intent = await stripe_client.v1.payment_intents.retrieve_async(pi)
    assert intent.status == "requires_capture"
    assert (await charge_of(stripe_client, pi))["amount_captured"] == 0

    assert (await ship(shop, order)).status_code == 204
    shipped = (await shop.get(f"/api/orders/{order['orderId']}")).json()
    assert shipped["status"] == "Shipped"
    assert cents(shipped["amountCaptured"]) == cents(order["total"])
    assert all(li["quantityShipped"] == li["quantity"] for li in shipped["lineItems"])
    charge = await charge_of(stripe_client, pi)
    assert charge["amount_captured"] == cents(order["total"])
    assert (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "succeeded"
    assert await refunds_at_stripe(stripe_client, pi) == []


async def test_shipping_one_of_two_lines_captures_its_share_and_releases_the_rest(
    shop: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await paid(shop, stripe_client)
    runner = order["lineItems"][0]
    answer = await ship(
        shop, order, [{"lineItemId": runner["lineItemId"], "quantity": runner["quantity"]}]
    )
    assert answer.status_code == 204, answer.text
    expected = share(order, runner, shipping=True)
    charge = await charge_of(stripe_client, pi)
    assert charge["amount_captured"] == expected < cents(order["total"])
    assert await refunds_at_stripe(stripe_client, pi) == []  # released, not refunded
    shown = (await shop.get(f"/api/orders/{order['orderId']}")).json()
    assert cents(shown["amountCaptured"]) == expected
    assert [li["quantityShipped"] for li in shown["lineItems"]] == [runner["quantity"], 0]


async def test_cancelling_before_shipment_leaves_no_charge_and_no_refund(
    shop: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await paid(shop, stripe_client)
    assert (await shop.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    shown = await wait_for_status(shop, order["orderId"], "Cancelled")
    assert shown["paymentStatus"] == "canceled"
    assert (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "canceled"
    assert (await charge_of(stripe_client, pi))["amount_captured"] == 0
    assert await refunds_at_stripe(stripe_client, pi) == []


async def test_a_return_of_one_line_refunds_its_share_once_even_when_sent_twice(
    shop: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await paid(shop, stripe_client)
    assert (await ship(shop, order)).status_code == 204
    socks = order["lineItems"][1]
    body = {
        "reason": "Wrong size",
        "lineItems": [{"lineItemId": socks["lineItemId"], "quantity": 1}],
    }
    key = {"Idempotency-Key": f"return-{uuid.uuid4()}", **OPS}
    url = f"/api/ops/orders/{order['orderId']}/returns"
    first = await shop.post(url, json=body, headers=key)
    again = await shop.post(url, json=body, headers=key)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    expected = share(order, socks, shipping=False)
    assert cents(first.json()["amount"]) == expected
    refunds = await refunds_at_stripe(stripe_client, pi)
    assert [r.amount for r in refunds] == [expected]
    shown = (await shop.get(f"/api/orders/{order['orderId']}")).json()
    assert shown["paymentStatus"] == "partially_refunded"
    assert cents(shown["amountRefunded"]) == expected
    assert shown["lineItems"][1]["quantityReturned"] == 1
    assert [cents(r["amount"]) for r in shown["returns"]] == [expected]
    assert shown["returns"][0]["reason"] == "Wrong size"

    # The same key with another return is refused; a line returned already cannot be again.
    other = {**body, "reason": "Changed my mind"}
    assert (await shop.post(url, json=other, headers=key)).status_code == 400
    fresh = {"Idempotency-Key": f"return-{uuid.uuid4()}", **OPS}
    assert (await shop.post(url, json=body, headers=fresh)).status_code == 400
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1


async def test_a_return_larger_than_what_is_held_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await paid(http, stripe_client)
    assert (await ship(http, order)).status_code == 204
    # A Dashboard refund of most of it first: Stripe's amounts are the truth.
    await stripe_client.v1.refunds.create_async(
        params={"payment_intent": pi, "amount": cents(order["total"]) - 500}
    )
    url = f"/api/ops/orders/{order['orderId']}/returns"
    key = {"Idempotency-Key": f"return-{uuid.uuid4()}", **OPS}
    answer = await http.post(url, json={"reason": "Damaged", "amount": 10.00}, headers=key)
    assert answer.status_code == 400, answer.text
    assert "more than is still held" in answer.json()["error"]
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1  # the Dashboard's only
    shown = (await http.get(f"/api/orders/{order['orderId']}")).json()
    assert shown["returns"] == []
    answer = await http.post(url, json={"reason": "Damaged", "amount": 5.00}, headers=key)
    assert answer.status_code == 200, answer.text  # what is held can be returned


async def test_returns_need_a_key_and_one_of_lines_or_amount(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, _ = await paid(http, stripe_client)
    url = f"/api/ops/orders/{order['orderId']}/returns"
    key = {"Idempotency-Key": f"return-{uuid.uuid4()}", **OPS}
    assert (await http.post(url, json={"reason": "x", "amount": 1}, headers=OPS)).status_code == 400
    both = {
        "reason": "x",
        "amount": 1,
        "lineItems": [{"lineItemId": str(uuid.uuid4()), "quantity": 1}],
    }
    assert (await http.post(url, json=both, headers=key)).status_code == 400
    answer = await http.post(url, json={"reason": "x", "amount": 1}, headers=key)
    assert answer.status_code == 400 and "Confirmed" in answer.json()["error"]  # not shipped


async def test_automatic_capture_refunds_the_share_of_the_lines_not_shipped(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await paid(http, stripe_client)
    runner = order["lineItems"][0]
    answer = await ship(http, order, [{"lineItemId": runner["lineItemId"], "quantity": 1}])
    assert answer.status_code == 204, answer.text
    one = {**runner, "quantity": 1}
    kept = share(order, one, shipping=True)
    refunds = await refunds_at_stripe(stripe_client, pi)
    assert [r.amount for r in refunds] == [cents(order["total"]) - kept]
    shown = (await http.get(f"/api/orders/{order['orderId']}")).json()
    assert [li["quantityShipped"] for li in shown["lineItems"]] == [1, 0]
    assert cents(shown["amountRefunded"]) == cents(order["total"]) - kept


async def test_a_capture_stripe_refuses_leaves_the_order_processing_and_flagged(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    temporal_client: Client,
) -> None:
    order, pi = await paid(shop, stripe_client)
    await emulator_control(settings, f"/_vult/payment_intents/{pi}/expire", {})
    answer = await ship(shop, order)
    assert answer.status_code == 400 and "could not be captured" in answer.json()["error"]
    shown = (await shop.get(f"/api/orders/{order['orderId']}")).json()
    assert shown["status"] == "Processing" and shown["amountCaptured"] is None

    handle = temporal_client.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))
    found = await handle.describe()
    assert found.typed_search_attributes.get(sa.NEEDS_ATTENTION) is True
    again = await shop.post(f"/api/ops/orders/{order['orderId']}/ship", json=SHIP, headers=OPS)
    assert again.status_code == 400 and "waiting" in again.json()["error"]
    note = {"note": "Customer paid by bank transfer"}
    resolved = await shop.post(
        f"/api/ops/orders/{order['orderId']}/resolve", json=note, headers=OPS
    )
    assert resolved.status_code == 204, resolved.text
