"""The service against what Stripe's test cards do after the payment, on the real programs:
a refund that is pending before it succeeds, a refund that succeeds and then fails, and an
inquiry (a dispute before any chargeback), which withdraws nothing and leaves the charge
refundable (the test cards of docs/http.md)."""

from __future__ import annotations

import uuid

import httpx
import stripe
from temporalio.client import Client

from tests.support.integration import (
    eventually,
    pay,
    pay_with_card,
    place,
    refunds_at_stripe,
    wait_for_status,
)
from workflows.order import OrderWorkflow, workflow_id_for

PENDING_REFUND_CARD = "4000000000007726"
FAILING_REFUND_CARD = "4000000000005126"
INQUIRY_CARD = "4000000000001976"


async def paid_with(
    http: httpx.AsyncClient, client: stripe.StripeClient, card: str
) -> tuple[str, str]:
    order = await place(http)
    pi = await pay(http, order)
    assert await pay_with_card(client, pi, card) == "succeeded"
    await wait_for_status(http, order["orderId"], "Confirmed")
    return order["orderId"], pi


async def payment_status(http: httpx.AsyncClient, order_id: str, want: str) -> bool:
    return bool((await http.get(f"/api/orders/{order_id}")).json()["paymentStatus"] == want)


async def test_a_refund_pending_at_stripe_shows_pending_then_refunded(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order_id, pi = await paid_with(http, stripe_client, PENDING_REFUND_CARD)
    assert (await http.post(f"/api/orders/{order_id}/cancel")).status_code == 204
    shown = await wait_for_status(http, order_id, "Cancelled")
    assert shown["paymentStatus"] in ("refund_pending", "refunded")
    await eventually(lambda: payment_status(http, order_id, "refunded"), "refunded", timeout=20)
    assert [r.status for r in await refunds_at_stripe(stripe_client, pi)] == ["succeeded"]


async def test_a_refund_that_fails_later_parks_the_order_for_ops(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    order_id, pi = await paid_with(http, stripe_client, FAILING_REFUND_CARD)
    assert (await http.post(f"/api/orders/{order_id}/cancel")).status_code == 204
    await wait_for_status(http, order_id, "Cancelled")
    await eventually(
        lambda: payment_status(http, order_id, "refund_failed"), "refund_failed", timeout=20
    )
    handle = temporal_client.get_workflow_handle(workflow_id_for(uuid.UUID(order_id)))
    state = await handle.query(OrderWorkflow.state)
    assert "failed at Stripe" in (state.ops.attention or "")
    assert [r.status for r in await refunds_at_stripe(stripe_client, pi)] == ["failed"]


async def test_an_inquiry_withdraws_nothing_and_a_cancel_still_refunds(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order_id, pi = await paid_with(http, stripe_client, INQUIRY_CARD)
    await eventually(lambda: payment_status(http, order_id, "disputed"), "disputed", timeout=20)
    assert (await http.get(f"/api/orders/{order_id}")).json()["disputeStatus"] == (
        "warning_needs_response"
    )
    assert (await http.post(f"/api/orders/{order_id}/cancel")).status_code == 204
    shown = await wait_for_status(http, order_id, "Cancelled")
    refunds = await refunds_at_stripe(stripe_client, pi)
    assert [r.amount for r in refunds] == [round(float(shown["total"]) * 100)]
