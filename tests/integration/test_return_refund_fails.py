"""A return's refund that fails at Stripe later (a closed card: the bank sends it back) is
money still owed, on the real programs: the order needs attention with the amount, the row
says refund_failed, and ops' retry refunds it again, once (issue 29, item 3)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import stripe
from temporalio.client import Client

from tests.support.integration import (
    OPS,
    confirmed_order,
    emulator_control,
    eventually,
    refunds_at_stripe,
)
from vult.process.settings import Settings
from workflows.order import OrderWorkflow, workflow_id_for


async def test_a_failed_return_refund_is_owed_until_ops_retry_it(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    settings: Settings,
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    oid = order["orderId"]
    for step, fields in (
        ("processing", None),
        ("ship", {"carrier": "UPS", "trackingNumber": "1"}),
    ):
        answer = await http.post(f"/api/ops/orders/{oid}/{step}", json=fields, headers=OPS)
        assert answer.status_code == 204, answer.text
    key = {"Idempotency-Key": f"return-{uuid.uuid4()}", **OPS}
    body: dict[str, Any] = {"reason": "Too small", "amount": 20.0}
    returned = await http.post(f"/api/ops/orders/{oid}/returns", json=body, headers=key)
    assert returned.status_code == 200, returned.text
    (refund,) = await refunds_at_stripe(stripe_client, pi)
    await emulator_control(settings, f"/_vult/refunds/{refund.id}/fail", {})
    handle = temporal_client.get_workflow_handle(workflow_id_for(uuid.UUID(oid)))

    async def owed() -> str | None:
        attention = (await handle.query(OrderWorkflow.state)).ops.attention
        return attention if attention and "2000 minor units" in attention else None

    reason = await eventually(owed, "the order parked for the failed return refund")
    assert "still owed" in reason
    shown = (await http.get(f"/api/orders/{oid}")).json()
    assert shown["paymentStatus"] == "refund_failed"

    assert (await http.post(f"/api/ops/orders/{oid}/retry", headers=OPS)).status_code == 204

    async def refunded_again() -> list[Any]:
        live = [r for r in await refunds_at_stripe(stripe_client, pi) if r.status != "failed"]
        return live

    (again,) = await eventually(refunded_again, "the return refunded again")
    assert again.amount == 2000 and again.id != refund.id
    shown = await eventually(
        lambda: _payment_status(http, oid, "partially_refunded"), "partially_refunded"
    )
    assert Decimal(str(shown["amountRefunded"])) == Decimal("20.00")


async def _payment_status(http: httpx.AsyncClient, oid: str, want: str) -> dict[str, Any] | None:
    shown: dict[str, Any] = (await http.get(f"/api/orders/{oid}")).json()
    return shown if shown["paymentStatus"] == want else None
