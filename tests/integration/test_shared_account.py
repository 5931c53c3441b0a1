"""The Stripe account is shared: other systems' payments are left alone, and Stripe's
amounts (refunds made in the Dashboard, disputes, 3-D Secure) are the truth the order
follows. On the real programs, with the emulator's own records checked."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import stripe
from temporalio.client import Client

from tests.support.integration import (
    DECLINED_CARD,
    DISPUTED_CARD,
    GOOD_CARD,
    OPS,
    THREE_D_SECURE_CARD,
    Webhooks,
    closed,
    confirmed_order,
    delivered_order,
    emulator_control,
    eventually,
    pay,
    pay_with_card,
    place,
    refunds_at_stripe,
    wait_for_status,
)
from vult.process.settings import Settings
from vult.temporal import search_attributes as sa
from workflows.late_payment import late_payment_workflow_id
from workflows.order import OrderWorkflow, workflow_id_for


async def order_of(http: httpx.AsyncClient, order: dict[str, Any]) -> dict[str, Any]:
    return (await http.get(f"/api/orders/{order['orderId']}")).json()


async def foreign_payment(client: stripe.StripeClient, metadata: dict[str, str], pay: bool) -> str:
    """Another system's PaymentIntent on the same account (the old Vult, a payment link)."""
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": 4200,
            "currency": "usd",
            "allowed_payment_method_types": ["card"],
            "metadata": metadata,
        }
    )
    if pay:
        assert await pay_with_card(client, intent.id, GOOD_CARD) == "succeeded"
    return intent.id


async def needs_attention(temporal: Client, order: dict[str, Any]) -> bool:
    handle = temporal.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))
    attrs = (await handle.describe()).typed_search_attributes
    return attrs.get(sa.NEEDS_ATTENTION) is True


async def metric(settings: Settings, name: str, reason: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://{settings.api_metrics_address}/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'{name}_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_other_systems_payments_are_never_refunded_or_cancelled(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    ignored = await metric(settings, "vult_webhook_events_ignored", "not_our_payment_intent")
    other_owner = await metric(settings, "vult_webhook_events_ignored", "other_owner")
    old_vult = {"order_id": str(uuid.uuid4()), "order_number": "VLT-20200101-000001"}
    paid = await foreign_payment(stripe_client, old_vult, pay=True)
    bare = await foreign_payment(stripe_client, {}, pay=True)
    payable = await foreign_payment(stripe_client, old_vult, pay=False)
    # Staging on the same account: our marker, another deployment's value, a real order id.
    order = await place(http)
    staging = await foreign_payment(
        stripe_client, {"order_id": order["orderId"], "vult_owner": "vult-staging"}, pay=True
    )
    # Its customer's card declined: an event about a PaymentIntent someone could still pay.
    assert (await pay_with_card(stripe_client, payable, DECLINED_CARD)).startswith("declined")

    async def counted() -> bool:
        now = await metric(settings, "vult_webhook_events_ignored", "not_our_payment_intent")
        return now >= ignored + 3 and (
            await metric(settings, "vult_webhook_events_ignored", "other_owner") > other_owner
        )

    await eventually(counted, "the foreign events counted as ignored")
    await asyncio.sleep(2.0)  # a refund would have followed the success event by now
    for pi in (paid, bare, staging):
        assert await refunds_at_stripe(stripe_client, pi) == [], pi
        assert (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "succeeded"
    assert (
        await stripe_client.v1.payment_intents.retrieve_async(payable)
    ).status == "requires_payment_method"
    assert (await order_of(http, order))["status"] == "Pending"


async def test_a_dashboard_partial_refund_shows_and_a_cancel_refunds_exactly_the_rest(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    total = round(order["total"] * 100)
    goodwill = total // 10
    await stripe_client.v1.refunds.create_async(params={"payment_intent": pi, "amount": goodwill})

    async def partly() -> dict[str, Any] | None:
        body = await order_of(http, order)
        return body if body["paymentStatus"] == "partially_refunded" else None

    body = await eventually(partly, "partially_refunded")
    assert round(body["amountRefunded"] * 100) == goodwill
    # Partly refunded, it may still be fulfilled; cancelled, it gets back exactly the rest.
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    refunds = await refunds_at_stripe(stripe_client, pi)
    assert sorted(r.amount for r in refunds) == sorted([goodwill, total - goodwill])
    cancelled = await order_of(http, order)
    assert cancelled["status"] == "Cancelled" and cancelled["paymentStatus"] == "refunded"
    assert round(cancelled["amountRefunded"] * 100) == total
    # Asked again: safe, and no third refund.
    await http.post(f"/api/orders/{order['orderId']}/cancel")
    assert len(await refunds_at_stripe(stripe_client, pi)) == 2


async def test_a_dashboard_full_refund_stops_fulfilment_and_flags_the_order(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    await stripe_client.v1.refunds.create_async(params={"payment_intent": pi})
    # Straight away, before the refund's event is in: fulfilment reads Stripe back first.
    response = await http.post(f"/api/ops/orders/{order['orderId']}/processing", headers=OPS)
    assert response.status_code == 400
    assert "refunded in full" in response.json()["error"]
    assert await eventually(lambda: needs_attention(temporal_client, order), "flagged")
    body = await order_of(http, order)
    assert body["status"] == "Confirmed" and body["paymentStatus"] == "refunded"
    # The way out: cancelling refunds nothing more and clears the flag.
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1
    assert not await needs_attention(temporal_client, order)


async def test_a_3d_secure_card_waits_for_authentication_then_confirms(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    order = await place(http)
    pi = await pay(http, order)
    assert await pay_with_card(stripe_client, pi, THREE_D_SECURE_CARD) == "requires_action"

    async def recorded() -> bool:
        return (await order_of(http, order))["paymentStatus"] == "requires_action"

    await eventually(recorded, "requires_action recorded")
    assert (await order_of(http, order))["status"] == "PaymentProcessing"
    secret = (await stripe_client.v1.payment_intents.retrieve_async(pi)).client_secret
    await emulator_control(
        settings, "/_vult/authenticate", {"client_secret": secret, "success": True}
    )
    await wait_for_status(http, order["orderId"], "Confirmed")


async def test_a_failed_3d_secure_authentication_leaves_the_order_payable(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    order = await place(http)
    pi = await pay(http, order)
    assert await pay_with_card(stripe_client, pi, THREE_D_SECURE_CARD) == "requires_action"
    secret = (await stripe_client.v1.payment_intents.retrieve_async(pi)).client_secret
    await emulator_control(
        settings, "/_vult/authenticate", {"client_secret": secret, "success": False}
    )
    failed = await wait_for_status(http, order["orderId"], "Failed")
    assert "failed authentication" in failed["paymentErrorMessage"]
    again = await pay(http, order)
    assert again != pi and await pay_with_card(stripe_client, again, GOOD_CARD) == "succeeded"
    await wait_for_status(http, order["orderId"], "Confirmed")


async def events_settled(temporal: Client, order: dict[str, Any]) -> None:
    """Until the order's workflow has taken no new event for a second (bounded)."""
    handle = temporal.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))
    seen = -1
    for _ in range(50):
        state = await handle.query(OrderWorkflow.state)
        if len(state.seen_event_ids) == seen and not state.queued_events:
            return
        seen = len(state.seen_event_ids)
        await asyncio.sleep(1.0)


async def disputed_order(
    http: httpx.AsyncClient, client: stripe.StripeClient
) -> tuple[dict[str, Any], str]:
    order = await place(http)
    pi = await pay(http, order)
    assert await pay_with_card(client, pi, DISPUTED_CARD) == "succeeded"

    async def disputed() -> bool:
        return (await order_of(http, order))["paymentStatus"] == "disputed"

    await eventually(disputed, "the order disputed")
    return order, pi


async def test_a_disputed_payment_is_flagged_unfulfillable_and_never_refunded(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    settings: Settings,
) -> None:
    order, pi = await disputed_order(http, stripe_client)
    body = await order_of(http, order)
    assert body["status"] == "Confirmed" and body["disputeStatus"] == "needs_response"
    handle = temporal_client.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.DISPUTED) is True and attrs.get(sa.NEEDS_ATTENTION) is True
    response = await http.post(f"/api/ops/orders/{order['orderId']}/processing", headers=OPS)
    assert response.status_code == 400 and "disputed" in response.json()["error"]
    response = await http.post(f"/api/orders/{order['orderId']}/cancel")
    assert response.status_code == 400 and "disputed" in response.json()["error"]
    assert await refunds_at_stripe(stripe_client, pi) == []
    # Won: the payment is kept, the flag clears, and the order can be fulfilled.
    (dispute,) = (await stripe_client.v1.disputes.list_async(params={"payment_intent": pi})).data
    await emulator_control(settings, f"/_vult/disputes/{dispute.id}/close", {"outcome": "won"})

    async def won() -> bool:
        return (await order_of(http, order))["disputeStatus"] == "won"

    await eventually(won, "the dispute won")
    body = await order_of(http, order)
    assert body["paymentStatus"] == "succeeded"
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.DISPUTED) is False and attrs.get(sa.NEEDS_ATTENTION) is False
    response = await http.post(f"/api/ops/orders/{order['orderId']}/processing", headers=OPS)
    assert response.status_code == 204, response.text


async def test_a_lost_dispute_records_the_money_gone_and_a_cancel_refunds_nothing(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, settings: Settings
) -> None:
    order, pi = await disputed_order(http, stripe_client)
    (dispute,) = (await stripe_client.v1.disputes.list_async(params={"payment_intent": pi})).data
    await emulator_control(settings, f"/_vult/disputes/{dispute.id}/close", {"outcome": "lost"})

    async def lost() -> bool:
        return (await order_of(http, order))["paymentStatus"] == "dispute_lost"

    await eventually(lost, "the dispute lost")
    response = await http.post(f"/api/ops/orders/{order['orderId']}/processing", headers=OPS)
    assert response.status_code == 400 and "dispute" in response.json()["error"]
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    assert await refunds_at_stripe(stripe_client, pi) == []
    assert (await order_of(http, order))["status"] == "Cancelled"


async def test_money_moved_after_the_workflow_closed_is_recorded_and_flagged(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    settings: Settings,
) -> None:
    order = await delivered_order(http, stripe_client)
    await closed(temporal_client, workflow_id_for(uuid.UUID(order["orderId"])))
    intents = await stripe_client.v1.payment_intents.list_async(params={"limit": 100})
    (pi,) = [
        i.id for i in intents.data if i.to_dict()["metadata"].get("order_id") == order["orderId"]
    ]
    total = round(order["total"] * 100)
    # A return refunded in the Dashboard after delivery: the row follows Stripe.
    await stripe_client.v1.refunds.create_async(params={"payment_intent": pi, "amount": 500})

    async def partly() -> dict[str, Any] | None:
        body = await order_of(http, order)
        return body if body["paymentStatus"] == "partially_refunded" else None

    body = await eventually(partly, "the late refund recorded")
    assert round(body["amountRefunded"] * 100) == 500 and body["status"] == "Delivered"
    # A dispute opened weeks later: the after-close workflow records it and flags a person.
    latest = (await stripe_client.v1.payment_intents.retrieve_async(pi)).to_dict()["latest_charge"]
    charge = latest["id"] if isinstance(latest, dict) else latest  # the emulator expands it
    await emulator_control(settings, f"/_vult/charges/{charge}/dispute", {})

    async def flagged() -> bool:
        handle = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
        return await handle.query("needs_attention") is not None

    await eventually(flagged, "the after-close workflow flagged the dispute")
    assert (await order_of(http, order))["paymentStatus"] == "disputed"
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1 and total > 500


async def test_a_dispute_closed_while_its_events_are_lost_is_read_back_at_fulfilment(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    webhooks: Webhooks,
    temporal_client: Client,
) -> None:
    order, pi = await disputed_order(http, stripe_client)
    # Every event of the dispute's opening handled first (the second may come a moment
    # after the first): the close that follows is the one nobody hears of.
    await events_settled(temporal_client, order)
    (dispute,) = (await stripe_client.v1.disputes.list_async(params={"payment_intent": pi})).data
    with webhooks.lost():
        await emulator_control(settings, f"/_vult/disputes/{dispute.id}/close", {"outcome": "won"})
        await asyncio.sleep(1.5)  # its events went nowhere
    assert (await order_of(http, order))["paymentStatus"] == "disputed"  # the last word heard
    response = await http.post(f"/api/ops/orders/{order['orderId']}/processing", headers=OPS)
    assert response.status_code == 204, response.text
    body = await order_of(http, order)
    assert body["status"] == "Processing" and body["disputeStatus"] == "won"


async def test_a_dispute_lost_while_its_events_are_lost_is_read_back_at_cancel(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    settings: Settings,
    webhooks: Webhooks,
) -> None:
    order, pi = await disputed_order(http, stripe_client)
    # Every event of the dispute's opening handled first (the second may come a moment
    # after the first): the close that follows is the one nobody hears of.
    await events_settled(temporal_client, order)
    (dispute,) = (await stripe_client.v1.disputes.list_async(params={"payment_intent": pi})).data
    with webhooks.lost():
        await emulator_control(settings, f"/_vult/disputes/{dispute.id}/close", {"outcome": "lost"})
        await asyncio.sleep(1.5)
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    body = await order_of(http, order)
    assert body["status"] == "Cancelled" and body["disputeStatus"] == "lost"
    assert body["paymentStatus"] == "dispute_lost"
    assert not await needs_attention(temporal_client, order)
    assert await refunds_at_stripe(stripe_client, pi) == []
