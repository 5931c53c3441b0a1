"""Every stuck order has a way out, through the ops API, on the real programs: a refund
that fails at Stripe waits for ops, who retry it or resolve it by hand; a cancel sent
again is answered as the first was."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from tests.support.integration import (
    OPS,
    confirmed_order,
    emulator_control,
    eventually,
    refunds_at_stripe,
)
from vult.process.settings import Settings
from vult.temporal import search_attributes as sa
from vult.temporal.orphans import orders_without_workflow
from workflows.order import OrderWorkflow, workflow_id_for


async def failed_refund(
    http: httpx.AsyncClient, client: stripe.StripeClient, temporal: Client, settings: Settings
) -> tuple[dict[str, Any], str, Any]:
    """A paid order cancelled, whose refund then fails at the bank: parked for ops."""
    order, pi = await confirmed_order(http, client)
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    (refund,) = await refunds_at_stripe(client, pi)
    await emulator_control(settings, f"/_vult/refunds/{refund.id}/fail", {})
    handle = temporal.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))

    async def parked() -> bool:
        state = await handle.query(OrderWorkflow.state)
        return state.ops.attention is not None

    await eventually(parked, "the order parked for its failed refund")
    return order, pi, handle


async def test_a_failed_refund_resolved_by_ops_stops_there(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    settings: Settings,
) -> None:
    order, pi, handle = await failed_refund(http, stripe_client, temporal_client, settings)
    state = await handle.query(OrderWorkflow.state)
    assert state.ops.retry_at is None and "failed at Stripe" in (state.ops.attention or "")
    body = (await http.get(f"/api/orders/{order['orderId']}")).json()
    assert body["paymentStatus"] == "refund_failed"

    response = await http.post(
        f"/api/ops/orders/{order['orderId']}/resolve", json={"note": ""}, headers=OPS
    )
    assert response.status_code == 400  # a note is required
    note = "Paid back by bank transfer, ticket 7781"
    response = await http.post(
        f"/api/ops/orders/{order['orderId']}/resolve", json={"note": note}, headers=OPS
    )
    assert response.status_code == 204, response.text
    state = await handle.query(OrderWorkflow.state)
    assert state.ops.attention is None and state.ops.resolutions[-1].note == note
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.NEEDS_ATTENTION) is False
    assert (await http.get(f"/api/orders/{order['orderId']}")).json()["resolutionNote"] == note
    # No second refund, and the customer's cancel sent again is answered as the first.
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    assert [r.status for r in await refunds_at_stripe(stripe_client, pi)] == ["failed"]


async def test_a_failed_refund_retried_by_ops_refunds_again_once(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    settings: Settings,
) -> None:
    order, pi, handle = await failed_refund(http, stripe_client, temporal_client, settings)
    response = await http.post(f"/api/ops/orders/{order['orderId']}/retry", headers=OPS)
    assert response.status_code == 204

    async def refunded_again() -> bool:
        return len(await refunds_at_stripe(stripe_client, pi)) == 2

    await eventually(refunded_again, "a second refund")
    statuses = sorted(r.status for r in await refunds_at_stripe(stripe_client, pi))
    assert statuses == ["failed", "succeeded"]
    assert (await handle.query(OrderWorkflow.state)).ops.attention is None


async def test_resolve_is_refused_for_an_order_that_needs_nothing(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order, _ = await confirmed_order(http, stripe_client)
    response = await http.post(
        f"/api/ops/orders/{order['orderId']}/resolve", json={"note": "all fine"}, headers=OPS
    )
    assert response.status_code == 400 and "Nothing to resolve" in response.json()["error"]


async def test_the_check_finds_an_order_row_that_has_no_workflow(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    engine: AsyncEngine,
) -> None:
    order, _ = await confirmed_order(http, stripe_client)
    orphan = uuid.uuid4()  # a row whose workflow failed after the insert, before this fix
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO orders (order_id, order_number, customer_email, status, sub_total,"
                " tax, shipping_cost, total, currency, shipping_full_name,"
                " shipping_address_line1, shipping_city, shipping_state, shipping_postal_code,"
                " shipping_country, created_date, updated_date) VALUES (:id, :number,"
                " 'orphan@example.com', 'Pending', 10, 0, 0, 10, 'USD', 'O', '1 St', 'C', 'S',"
                " '1', 'US', now(), now())"
            ),
            {"id": orphan, "number": f"VLT-20200101-{uuid.uuid4().int % 1000000:06d}"},
        )
    try:
        since = datetime.now(UTC) - timedelta(minutes=10)  # the shared database holds more
        lost = await orders_without_workflow(engine, temporal_client, since)
        assert orphan in lost and uuid.UUID(order["orderId"]) not in lost
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM orders WHERE order_id = :id"), {"id": orphan})
