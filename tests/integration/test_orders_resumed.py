"""An order whose workflow is gone is found and resumed, on the real programs: a paid
order's workflow terminated as ops would from the Web UI or the CLI; a command meets a
clear answer and resumes it at once; the sweep's schedule resumes the ones nobody asks
about; what was mid-way carries on from what Stripe says now."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from tests.support.integration import (
    GOOD_CARD,
    OPS,
    confirmed_order,
    eventually,
    pay,
    pay_with_card,
    place,
    refunds_at_stripe,
    wait_for_status,
)
from vult.domain.contracts import OrderState
from vult.process.settings import Settings
from vult.temporal import search_attributes as sa
from vult.temporal.orphans import how_it_ended, orders_without_workflow
from vult.temporal.schedules import SWEEP_SCHEDULE_ID, ensure_sweep_schedule
from workflows.order import OrderWorkflow, workflow_id_for
from workflows.order_sweep import ResumeOrderWorkflow, resume_workflow_id


async def terminate(temporal: Client, order: dict[str, Any]) -> None:
    """What "Terminate" in the Web UI's "More Actions" (or `temporal workflow terminate`) does."""
    handle = temporal.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))
    await handle.terminate(reason="terminated from the Web UI by mistake")
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED


async def resumed_run(temporal: Client, order: dict[str, Any]) -> Any:
    """Wait for a new run of the order's workflow that is running and has caught up."""
    handle: WorkflowHandle[OrderWorkflow, OrderState] = temporal.get_workflow_handle_for(
        OrderWorkflow.run, workflow_id_for(uuid.UUID(order["orderId"]))
    )

    async def caught_up() -> Any:
        found = await handle.describe()
        if found.status != WorkflowExecutionStatus.RUNNING:
            return None
        state = await handle.query(OrderWorkflow.state)
        return (handle, found) if state.resumes and not state.catching_up else None

    return await eventually(caught_up, "the order's workflow resumed", timeout=90)


async def test_a_command_for_a_terminated_paid_order_says_so_and_resumes_it(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    engine: AsyncEngine,
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    order_id = order["orderId"]
    await terminate(temporal_client, order)
    assert uuid.UUID(order_id) in await orders_without_workflow(engine, temporal_client)

    response = await http.post(f"/api/ops/orders/{order_id}/processing", headers=OPS)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "15"
    body = response.json()
    assert "no running workflow" in body["error"] and "being resumed" in body["error"]
    assert body["resuming"] is True and "with status" not in body["error"]

    handle, found = await resumed_run(temporal_client, order)
    assert found.typed_search_attributes.get(sa.RESUMED) is True
    assert found.typed_search_attributes.get(sa.ORDER_STATUS) == "Confirmed"
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert metadata.current_details.startswith("RESUMED") and "TERMINATED" in (
        metadata.current_details
    )
    state = await handle.query(OrderWorkflow.state)
    assert state.resumes[-1].previous == "TERMINATED"
    assert state.payments.current is not None and state.payments.current.payment_intent_id == pi
    shown = (await http.get(f"/api/orders/{order_id}")).json()
    assert shown["resumedAt"] is not None and shown["status"] == "Confirmed"
    listed = await http.get("/api/ops/orders?resumed=true&pageSize=100", headers=OPS)
    assert order_id in {o["orderId"] for o in listed.json()["items"]}
    listed = await http.get("/api/ops/orders?resumed=false&pageSize=100", headers=OPS)
    assert order_id not in {o["orderId"] for o in listed.json()["items"]}
    assert await how_it_ended(temporal_client, uuid.UUID(order_id)) is None

    # The order carries on where it stood: ops take it to Processing, then ship it.
    response = await http.post(f"/api/ops/orders/{order_id}/processing", headers=OPS)
    assert response.status_code == 204, response.text
    ship = {"carrier": "UPS", "trackingNumber": "1Z999"}
    response = await http.post(f"/api/ops/orders/{order_id}/ship", json=ship, headers=OPS)
    assert response.status_code == 204, response.text
    assert await refunds_at_stripe(stripe_client, pi) == []


async def test_a_customer_cancel_of_a_terminated_paid_order_refunds_it_once(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
) -> None:
    order, pi = await confirmed_order(http, stripe_client)
    await terminate(temporal_client, order)
    response = await http.post(f"/api/orders/{order['orderId']}/cancel")
    assert response.status_code == 503 and "being resumed" in response.json()["error"]
    await resumed_run(temporal_client, order)
    for _ in range(2):  # sent again, as a customer clicking twice would
        response = await http.post(f"/api/orders/{order['orderId']}/cancel")
        assert response.status_code == 204, response.text
    shown = await wait_for_status(http, order["orderId"], "Cancelled")
    refunds = await refunds_at_stripe(stripe_client, pi)
    assert len(refunds) == 1 and refunds[0].amount == int(Decimal(str(shown["total"])) * 100)


async def test_a_cancel_whose_refund_was_made_before_the_terminate_is_completed_once(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    engine: AsyncEngine,
) -> None:
    """Terminated mid-cancellation: the refund went through at Stripe, the row still says
    Confirmed. The resumed run records the cancellation and refunds nothing more."""
    order, pi = await confirmed_order(http, stripe_client)
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    await terminate(temporal_client, order)
    async with engine.begin() as conn:  # the row as it stood before the cancel's last write
        await conn.execute(
            text(
                "UPDATE orders SET status = 'Confirmed', stripe_payment_status = 'succeeded',"
                " cancellation_reason = NULL WHERE order_id = :id"
            ),
            {"id": uuid.UUID(order["orderId"])},
        )
    found = await temporal_client.execute_workflow(
        ResumeOrderWorkflow.run,
        uuid.UUID(order["orderId"]),
        id=resume_workflow_id(uuid.UUID(order["orderId"])),
        task_queue=(await _task_queue(temporal_client, order)),
    )
    assert found.outcome == "resumed" and found.previous == "TERMINATED"
    shown = await wait_for_status(http, order["orderId"], "Cancelled")
    assert shown["paymentStatus"] == "refunded"
    assert len(await refunds_at_stripe(stripe_client, pi)) == 1


async def test_a_payment_made_while_the_workflow_was_gone_confirms_the_resumed_order(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
) -> None:
    """The webhook finds no workflow: answered 503 (Stripe sends it again) and the order
    resumed at once; the resumed run reads the PaymentIntent and confirms the order."""
    order = await place(http)
    pi = await pay(http, order)
    await terminate(temporal_client, order)
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
    await resumed_run(temporal_client, order)
    shown = await wait_for_status(http, order["orderId"], "Confirmed", timeout=30)
    assert shown["resumedAt"] is not None
    assert await refunds_at_stripe(stripe_client, pi) == []


async def test_the_sweep_schedule_resumes_orders_nobody_asks_about(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    unpaid = await place(http)
    paying = await place(http)
    pi = await pay(http, paying)
    delivered, _ = await confirmed_order(http, stripe_client)
    for step in ("processing", "ship", "deliver"):
        body = {"carrier": "UPS", "trackingNumber": "1Z1"} if step == "ship" else None
        response = await http.post(
            f"/api/ops/orders/{delivered['orderId']}/{step}", json=body, headers=OPS
        )
        assert response.status_code == 204, response.text
    for order in (unpaid, paying):
        await terminate(temporal_client, order)
    lost = await orders_without_workflow(engine, temporal_client)
    assert {uuid.UUID(unpaid["orderId"]), uuid.UUID(paying["orderId"])} <= set(lost)
    assert uuid.UUID(delivered["orderId"]) not in lost  # its run completed: never resumed

    every = settings.order_sweep_interval
    assert await ensure_sweep_schedule(temporal_client, settings.temporal_task_queue, every)
    assert not await ensure_sweep_schedule(temporal_client, settings.temporal_task_queue, every)
    schedule = temporal_client.get_schedule_handle(SWEEP_SCHEDULE_ID)
    try:
        # Run again with another interval, the set-up job brings the schedule to it.
        seven = timedelta(minutes=7)
        assert not await ensure_sweep_schedule(temporal_client, settings.temporal_task_queue, seven)
        spec = (await schedule.describe()).schedule.spec
        assert [i.every for i in spec.intervals] == [seven]
        await schedule.trigger()
        for order in (unpaid, paying):
            await resumed_run(temporal_client, order)
    finally:
        await schedule.delete()
    described = await schedule_runs(temporal_client)
    assert described >= 1

    # Each carries on: the unpaid one can be paid; the one mid-payment still confirms.
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
    await wait_for_status(http, paying["orderId"], "Confirmed", timeout=30)
    pi2 = await pay(http, unpaid)
    assert await pay_with_card(stripe_client, pi2, GOOD_CARD) == "succeeded"
    await wait_for_status(http, unpaid["orderId"], "Confirmed", timeout=30)
    delivered_run = temporal_client.get_workflow_handle(
        workflow_id_for(uuid.UUID(delivered["orderId"]))
    )
    await asyncio.wait_for(delivered_run.result(), timeout=30)  # its return window over
    assert (await delivered_run.describe()).status == WorkflowExecutionStatus.COMPLETED


async def schedule_runs(temporal: Client) -> int:
    """Sweep runs the schedule started (its own history in the Web UI)."""
    query = "WorkflowType = 'OrderSweepWorkflow'"

    async def listed() -> int:
        return len([wf async for wf in temporal.list_workflows(query)])

    return int(await eventually(listed, "a sweep run listed"))


async def _task_queue(temporal: Client, order: dict[str, Any]) -> str:
    handle = temporal.get_workflow_handle(workflow_id_for(uuid.UUID(order["orderId"])))
    return (await handle.describe()).task_queue


async def test_a_cancel_recorded_mid_charge_is_completed_by_the_resumed_run(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
    engine: AsyncEngine,
) -> None:
    """The customer was told (202) the order would be cancelled once the charge settled;
    the workflow was then terminated and the charge went through: the resumed run, built
    from the row, confirms and then cancels it with a refund, never leaves it shippable."""
    order = await place(http)
    pi = await pay(http, order)
    async with engine.begin() as conn:  # as the workflow records a cancel mid-charge
        await conn.execute(
            text("UPDATE orders SET pending_cancel_reason = :r WHERE order_id = :o"),
            {"r": "Cancelled by customer", "o": order["orderId"]},
        )
    await terminate(temporal_client, order)
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
    await resumed_run(temporal_client, order)
    shown = await wait_for_status(http, order["orderId"], "Cancelled", timeout=30)
    assert shown["cancellationReason"] == "Cancelled by customer"
    assert [r.status for r in await refunds_at_stripe(stripe_client, pi)] == ["succeeded"]
