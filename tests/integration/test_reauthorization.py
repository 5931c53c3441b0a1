"""Capture at shipment with ON_AUTHORIZATION_EXPIRY=reauthorize, on the real programs and
Stripe's rules as the emulator keeps them: the first payment saves the card on a Customer,
the hold lapses when its charge says (capture_before), and the new authorization is made
off-session with the saved card. A card that wants its customer back cancels the order,
with no PaymentIntent left open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe.params import PaymentIntentListParams

from tests.support.integration import (
    GOOD_CARD,
    OPS,
    THREE_D_SECURE_CARD,
    RunningWorker,
    emulator_control,
    eventually,
    order_body,
    pay_with_card,
    serve,
    wait_for_status,
)
from vult.process.settings import Settings

HOLD_SECONDS = 6


@pytest.fixture(scope="module")
def reauthorizing_url(settings: Settings) -> Iterator[str]:
    """An API placing orders under capture at shipment that re-authorizes a lapsed hold."""
    changed = settings.model_copy(
        update={
            "payment_capture": "at_shipment",
            "on_authorization_expiry": "reauthorize",
            "api_metrics_address": "",
        }
    )
    with serve(changed) as url:
        yield url


@pytest.fixture
async def shop(reauthorizing_url: str, worker: RunningWorker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=reauthorizing_url, timeout=30) as client:
        yield client


async def authorized(
    shop: httpx.AsyncClient, client: stripe.StripeClient, settings: Settings, card: str
) -> tuple[dict[str, Any], str]:
    """An order whose card is authorized with a hold of a few seconds (later ones last as
    long as Stripe's)."""
    order = (await shop.post("/api/orders", json=order_body())).json()
    answer = (await shop.post(f"/api/orders/{order['orderId']}/payment")).json()
    pi = answer["paymentIntentId"]
    await emulator_control(settings, f"/_vult/payment_intents/{pi}/hold", {"seconds": HOLD_SECONDS})
    status = await pay_with_card(client, pi, card)
    if status == "requires_action":  # the customer passes 3-D Secure in the page
        body = {"client_secret": answer["clientSecret"], "success": True}
        status = (await emulator_control(settings, "/_vult/authenticate", body))["status"]
    assert status == "requires_capture", status
    await wait_for_status(shop, order["orderId"], "Confirmed")
    return order, pi


async def test_a_lapsed_hold_is_renewed_off_session_with_the_card_the_first_payment_saved(
    shop: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    order, old = await authorized(shop, stripe_client, settings, GOOD_CARD)
    first = await stripe_client.v1.payment_intents.retrieve_async(old)
    assert first.customer and first.setup_future_usage == "off_session"

    async def renewed() -> str | None:
        params = PaymentIntentListParams(customer=str(first.customer))
        listed = await stripe_client.v1.payment_intents.list_async(params=params)
        others = [pi.id for pi in listed.data if pi.id != old and pi.status == "requires_capture"]
        return others[0] if others else None

    new = await eventually(renewed, "a new authorization", timeout=HOLD_SECONDS + 20)
    intent = await stripe_client.v1.payment_intents.retrieve_async(new)
    assert intent.status == "requires_capture" and intent.customer == first.customer
    assert intent.payment_method == first.payment_method

    async def released() -> bool | None:
        # The workflow releases the old hold just after it has the new one: a moment later.
        found = await stripe_client.v1.payment_intents.retrieve_async(old)
        return True if found.status == "canceled" else None

    await eventually(released, "the lapsed hold released", timeout=15)

    oid = order["orderId"]
    assert (await shop.post(f"/api/ops/orders/{oid}/processing", headers=OPS)).status_code == 204
    shipped = await shop.post(
        f"/api/ops/orders/{oid}/ship", json={"carrier": "UPS", "trackingNumber": "1"}, headers=OPS
    )
    assert shipped.status_code == 204, shipped.text
    captured = await stripe_client.v1.payment_intents.retrieve_async(new)
    assert captured.status == "succeeded" and captured.amount_received == captured.amount


async def test_a_card_that_wants_its_customer_back_cancels_the_order_and_leaves_nothing_open(
    shop: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    """4000 0027 6000 3184 asks for authentication on every payment, off-session too: Stripe
    answers the renewal authentication_required, and nobody is there to give it."""
    order, old = await authorized(shop, stripe_client, settings, THREE_D_SECURE_CARD)
    customer = (await stripe_client.v1.payment_intents.retrieve_async(old)).customer
    assert isinstance(customer, str)
    shown = await wait_for_status(shop, order["orderId"], "Cancelled", timeout=HOLD_SECONDS + 20)
    assert "re-authorization refused" in (shown.get("cancellationReason") or "")
    listed = await stripe_client.v1.payment_intents.list_async(params={"customer": customer})
    assert len(listed.data) == 2  # the first authorization and the refused renewal
    assert {pi.status for pi in listed.data} == {"canceled"}
