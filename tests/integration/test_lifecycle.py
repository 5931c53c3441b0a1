"""The whole lifecycle on the real programs: cancellation in every status with Stripe's own
records checked, fulfilment by ops, and a lost webhook recovered by reconciliation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus

from tests.support.integration import (
    DECLINED_CARD,
    GOOD_CARD,
    OPS,
    RunningWorker,
    Webhooks,
    confirmed_order,
    pay,
    pay_with_card,
    place,
    refunds_at_stripe,
    wait_for_status,
)
from workflows.order import workflow_id_for


async def cancel(http: httpx.AsyncClient, order: dict[str, Any]) -> httpx.Response:
    return await http.post(f"/api/orders/{order['orderId']}/cancel")


async def test_a_pending_order_is_cancelled(http: httpx.AsyncClient) -> None:
    order = await place(http)
    response = await cancel(http, order)
    assert response.status_code == 204
    cancelled = (await http.get(f"/api/orders/{order['orderId']}")).json()
    assert cancelled["status"] == "Cancelled"
    assert cancelled["cancellationReason"] == "Cancelled by customer"


async def test_cancelling_while_paying_cancels_the_payment_intent_at_stripe(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order = await place(http)
    pi = await pay(http, order)
    assert (await cancel(http, order)).status_code == 204
    assert (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "canceled"
    assert await refunds_at_stripe(stripe_client, pi) == []
    assert (await http.get(f"/api/orders/{order['orderId']}")).json()["status"] == "Cancelled"


async def test_a_failed_order_is_cancelled_and_its_payment_intent_closed(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order = await place(http)
    pi = await pay(http, order)
    await pay_with_card(stripe_client, pi, DECLINED_CARD)
    await wait_for_status(http, order["orderId"], "Failed")
    assert (await cancel(http, order)).status_code == 204
    assert (await http.get(f"/api/orders/{order['orderId']}")).json()["status"] == "Cancelled"
    assert (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "canceled"


async def test_cancelling_a_confirmed_order_refunds_it_in_full_exactly_once(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, engine: AsyncEngine
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    assert (await cancel(http, order)).status_code == 204
    again = await cancel(http, order)  # safe to send again (docs/http.md): nothing more is done
    assert again.status_code == 204

    (refund,) = await refunds_at_stripe(stripe_client, pi)
    assert refund.amount == 29412
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT status, stripe_refund_id, stripe_payment_status, cancellation_reason "
                    "FROM orders WHERE order_id = :id"
                ),
                {"id": order["orderId"]},
            )
        ).one()
    assert tuple(row) == ("Cancelled", refund.id, "refunded", "Cancelled by customer")


async def test_a_payment_that_lands_as_the_order_is_cancelled_is_refunded_once(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order = await place(http)
    pi = await pay(http, order)
    # The customer pays; the webhook is about a second behind. Cancel in that second.
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
    assert (await cancel(http, order)).status_code == 204
    await asyncio.sleep(2.5)  # the late webhook arrives and must not refund again
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1
    assert (await http.get(f"/api/orders/{order['orderId']}")).json()["status"] == "Cancelled"


async def test_ops_fulfil_an_order_to_delivered_and_its_workflow_completes(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    order, _ = await confirmed_order(http, stripe_client)
    base = f"/api/ops/orders/{order['orderId']}"
    assert (
        await http.post(
            f"{base}/ship", headers=OPS, json={"carrier": "UPS", "trackingNumber": "1Z"}
        )
    ).status_code == 400
    assert (await http.post(f"{base}/processing", headers=OPS)).status_code == 204
    shipped = await http.post(
        f"{base}/ship", headers=OPS, json={"carrier": "UPS", "trackingNumber": "1Z999AA10123456784"}
    )
    assert shipped.status_code == 204
    assert (await cancel(http, order)).json() == {
        "error": "Cannot cancel order with status: Shipped"
    }
    assert (await http.post(f"{base}/deliver", headers=OPS)).status_code == 204

    delivered = (await http.get(f"/api/orders/{order['orderId']}")).json()
    assert delivered["status"] == "Delivered"
    assert (delivered["shippingCarrier"], delivered["trackingNumber"]) == (
        "UPS",
        "1Z999AA10123456784",
    )
    handle = temporal_client.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))
    await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    # The finished workflow takes no commands; the answer still names the status.
    late = await cancel(http, order)
    assert (late.status_code, late.json()) == (
        400,
        {"error": "Cannot cancel order with status: Delivered"},
    )


async def test_ops_endpoints_refuse_anonymous_and_wrong_tokens_and_change_nothing(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, _ = await confirmed_order(http, stripe_client)
    base = f"/api/ops/orders/{order['orderId']}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        for method, path, body in (
            ("POST", f"{base}/processing", None),
            ("POST", f"{base}/cancel", {"reason": "fraud"}),
            ("GET", "/api/ops/orders", None),
            ("GET", base, None),
        ):
            response = await http.request(method, path, headers=headers, json=body)
            assert response.status_code == 401, (method, path, headers)
    assert (await http.get(f"/api/orders/{order['orderId']}")).json()["status"] == "Confirmed"


async def test_ops_cancel_with_a_reason_refunds(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    base = f"/api/ops/orders/{order['orderId']}"
    assert (await http.post(f"{base}/cancel", headers=OPS, json={"reason": ""})).status_code == 400
    response = await http.post(f"{base}/cancel", headers=OPS, json={"reason": "suspected fraud"})
    assert response.status_code == 204
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1
    seen = (await http.get(base, headers=OPS)).json()
    assert (seen["status"], seen["cancellationReason"]) == ("Cancelled", "suspected fraud")


async def test_ops_list_and_filter_orders_with_paging(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    email = f"filter-{uuid.uuid4().hex[:8]}@example.com"
    placed = [await place(http, email) for _ in range(3)]
    await cancel(http, placed[0])
    listing = (
        await http.get(
            "/api/ops/orders", headers=OPS, params={"customerEmail": email.upper(), "pageSize": 2}
        )
    ).json()
    assert listing["totalCount"] == 3 and listing["pageSize"] == 2
    assert [o["orderId"] for o in listing["items"]] == [placed[2]["orderId"], placed[1]["orderId"]]
    page2 = (
        await http.get(
            "/api/ops/orders",
            headers=OPS,
            params={"customerEmail": email, "pageSize": 2, "page": 2},
        )
    ).json()
    assert [o["orderId"] for o in page2["items"]] == [placed[0]["orderId"]]
    cancelled = (
        await http.get(
            "/api/ops/orders", headers=OPS, params={"customerEmail": email, "status": "Cancelled"}
        )
    ).json()
    assert [o["orderId"] for o in cancelled["items"]] == [placed[0]["orderId"]]
    after_all = (
        await http.get(
            "/api/ops/orders",
            headers=OPS,
            params={"customerEmail": email, "createdFrom": placed[2]["createdDate"]},
        )
    ).json()
    assert [o["orderId"] for o in after_all["items"]] == [placed[2]["orderId"]]
    bad = await http.get("/api/ops/orders", headers=OPS, params={"status": "Lost"})
    assert bad.status_code == 400


async def test_a_lost_webhook_is_recovered_by_reconciliation_even_across_a_worker_restart(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    webhooks: Webhooks,
    worker: RunningWorker,
) -> None:
    order = await place(http)
    pi = await pay(http, order)
    with webhooks.lost():
        await worker.stop()
        try:
            assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
            await asyncio.sleep(4)  # the webhook went nowhere; the reconcile timer is due
            stuck = (await http.get(f"/api/orders/{order['orderId']}")).json()
            assert stuck["status"] == "PaymentProcessing"
        finally:
            await worker.start()
        await wait_for_status(http, order["orderId"], "Confirmed", timeout=20)
