"""The after-close workflow's refunds, from an adversarial review (issue 29): ops' retry is
for the round it came to, a refund ops resolved is never owed again, the row shows money
owed, and a refund it made is watched until Stripe settles it. Each failed first."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from temporalio.client import Client

from api.order_commands import OrderCommands
from tests.support.after_close import (
    AMOUNT,
    delivered_with_a_return,
    flag_of,
    stripe_event,
    until,
)
from tests.support.workflows import Backend, FakeStripeIntent, Harness, event, stand_in_worker
from vult.domain.contracts import (
    DisputeInfo,
    OrderTiming,
    ResolveOrder,
    ReturnRequest,
    ShipOrder,
)
from vult.domain.status import OrderStatus
from workflows.late_payment import LatePaymentWorkflow, late_payment_workflow_id
from workflows.order import OrderWorkflow

# ---- 1. A `retry` ops sent about something else is used later to refund again -----------


async def test_a_retry_sent_for_a_dispute_does_not_refund_a_later_failure_without_ops(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    """A delivered order's return refund (54.00) succeeded; its workflow closed. A dispute
    opens: the after-close workflow flags it, ops press `retry` (to look again). Later the
    dispute is won and the return's refund fails at the bank. That failure must be flagged
    with the amount owed and wait for ops (they may have paid back another way); it must not
    be refunded again on the strength of the old `retry`."""
    order_id, pi, key = delivered_with_a_return(backend, failed=False)  # succeeded, for now
    backend.disputes[pi] = DisputeInfo(dispute_id="dp_1", status="needs_response", amount=5400)
    await commands.settle_late(order_id, stripe_event(pi, "charge.dispute.created"))
    handle = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    flag = await flag_of(temporal_client, pi, lambda f: "dispute" in f)
    assert flag is not None and "dispute" in flag, flag
    await handle.execute_update(LatePaymentWorkflow.retry)  # ops look again: still open
    await asyncio.sleep(0.5)
    # Weeks later: the dispute is won, and the return's refund fails at the bank.
    backend.disputes[pi] = DisputeInfo(dispute_id="dp_1", status="won", amount=5400)
    backend.refund_outcomes[backend._refund_id(key)] = "failed"
    await commands.settle_late(order_id, stripe_event(pi, "refund.failed"))
    await asyncio.sleep(1.5)
    made_again = [k for k in backend.refunds if k != key]
    assert made_again == [], f"refunded again without ops deciding: {made_again}"


# ---- 2. A failed refund ops resolved is raised again (and retry pays twice) -------------


async def test_a_failed_return_refund_ops_resolved_is_not_owed_again_after_close(
    temporal_client: Client, commands: OrderCommands, backend: Backend, task_queue: str
) -> None:
    """The order's workflow: a return's refund fails, ops pay the customer back by bank
    transfer and `resolve` it (docs/operations.md: "a later event does not raise them
    again"). The order's workflow closes. A Dashboard refund's event then reaches the
    after-close workflow: it must not flag that refund as owed again (ops' `retry` would
    then pay the customer a second time)."""
    order_queue = f"{task_queue}-order"
    async with stand_in_worker(temporal_client, order_queue, backend):
        harness = Harness(
            temporal_client,
            order_queue,
            backend,
            timing=OrderTiming(return_window=__import__("datetime").timedelta(seconds=2)),
        )
        placed, handle, intent = await harness.paid()
        pi = intent.payment_intent_id
        await handle.execute_update(OrderWorkflow.start_processing)
        await handle.execute_update(
            OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1")
        )
        await handle.execute_update(OrderWorkflow.deliver)
        request = ReturnRequest(key="r-1", reason="Too small", amount=Decimal("20.00"))
        record = await handle.execute_update(OrderWorkflow.take_return, request)
        assert record.refund_id is not None
        backend.refund_outcomes[record.refund_id] = "failed"
        await handle.signal(OrderWorkflow.payment_event, event(pi, "refund.failed"))
        for _ in range(200):
            state = await handle.query(OrderWorkflow.state)
            if state.ops.attention is not None:
                break
            await asyncio.sleep(0.05)
        assert state.ops.attention is not None, state
        await handle.execute_update(OrderWorkflow.resolve, ResolveOrder(note="Paid by transfer"))
        await asyncio.wait_for(handle.result(), timeout=20)  # the return window closes
    calls = backend.refund_calls
    # Later: 10.00 refunded by hand in the Dashboard; its event finds no order workflow.
    from vult.domain.contracts import RefundInfo

    backend.outside_refunds[pi] = [
        RefundInfo(refund_id="re_dash", status="succeeded", amount=1000, currency="usd")
    ]
    await commands.settle_late(placed.order_id, stripe_event(pi, "charge.refunded"))
    late = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    # Its flag, watched until it is owed (10 s) or the workflow has ended (then once more).
    ended = asyncio.ensure_future(late.result())
    flag = await flag_of(temporal_client, pi, lambda f: "owed" in f, until_done=ended)
    assert flag is None or "owed" not in flag, f"a resolved refund is owed again: {flag}"
    note = await asyncio.wait_for(ended, timeout=10)
    assert backend.refund_calls == calls, note


# ---- 3. The row forgets that money is owed ----------------------------------------------


async def test_the_row_says_refund_failed_while_a_return_refund_is_owed_after_close(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    """The order's workflow writes `refund_failed` on the row while a refund of ours is owed
    "until a refund goes through (or ops resolve it), whatever later events say"
    (workflows/order_actions/refunds.py, `learn`). The after-close workflow, flagging a
    return's failed refund as owed, writes Stripe's plain status instead: the row says all is
    well."""
    order_id, pi, key = delivered_with_a_return(backend, failed=True)
    await commands.settle_late(order_id, stripe_event(pi, "refund.failed"))
    flag = await flag_of(temporal_client, pi, lambda f: "owed" in f)
    assert flag is not None and "5400" in flag, flag
    statuses = [r.stripe_payment_status for r in backend.recorded]
    assert statuses and statuses[-1] == "refund_failed", f"the row says {statuses}"
    await temporal_client.get_workflow_handle(late_payment_workflow_id(pi)).terminate("over")


# ---- 4. The after-close workflow ends while the refund it just made is pending ----------


async def test_the_after_close_workflow_does_not_end_with_its_own_refund_pending(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    """Ops' `retry` makes a failed return refund again; Stripe answers `pending` (a card
    refund settles days later, and can still fail). The workflow must not end while money
    it moved can still move (the order's workflow waits for its refunds to settle): if the
    refund.failed webhook is lost, nobody learns that the money is still owed."""
    order_id, pi, key = delivered_with_a_return(backend, failed=True)
    backend.refund_outcomes[backend._refund_id(f"{key}:again-1")] = "pending"  # as Stripe says
    await commands.settle_late(order_id, stripe_event(pi, "refund.failed"))
    flag = await flag_of(temporal_client, pi, lambda f: "owed" in f)
    assert flag is not None and "5400" in flag, flag
    handle = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    await handle.execute_update(LatePaymentWorkflow.retry)
    await until("the refund made again", lambda: f"{key}:again-1" in backend.refunds)
    await asyncio.sleep(1.0)
    described = await handle.describe()
    assert described.status is not None and described.status.name == "RUNNING", (
        f"the after-close workflow is {described.status.name if described.status else None} "
        f"with its refund {backend._refund_id(f'{key}:again-1')} still pending"
    )
    await handle.terminate("over")


async def test_a_cancellation_refund_ops_resolved_is_not_made_again_by_a_redelivery(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    """A cancelled order whose refund failed and which ops resolved (paid back by
    transfer): a success redelivered after close refunds nothing, whatever Stripe's key
    store still holds (after 24 h a refund under the same key would be a new one)."""
    order_id = uuid.uuid4()
    pi = f"pi_{uuid.uuid4().hex[:8]}"
    backend.rows[order_id] = OrderStatus.Cancelled
    backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), status="succeeded")
    key = f"order:{order_id}:refund:{pi}"
    backend.refunds[key] = pi
    refund_id = backend._refund_id(key)
    backend.refund_outcomes[refund_id] = "failed"
    backend.settled[order_id] = [refund_id]  # resolved by ops, on the row
    calls = backend.refund_calls
    await commands.settle_late(order_id, stripe_event(pi, "payment_intent.succeeded"))
    handle = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    note = await asyncio.wait_for(handle.result(), timeout=20)
    assert backend.refund_calls == calls, f"refunded again: {note}"
    assert "paid back" in note, note
