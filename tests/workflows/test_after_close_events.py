"""Issue 29, item 9: every event for a PaymentIntent whose order's workflow has closed is
handled, also one that joins the after-close workflow while it waits (a dispute opened
while a payment's run waits for it to settle). Before, the second start joined the run and
its type was lost: the dispute was never recorded nor flagged."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client

from api.order_commands import OrderCommands
from tests.support.after_close import (
    AMOUNT,
    delivered_with_a_return,
    flag_of,
    stripe_event,
    until,
)
from tests.support.workflows import Backend, FakeStripeIntent
from vult.domain.contracts import DisputeInfo
from vult.domain.status import OrderStatus
from workflows.late_payment import LatePaymentWorkflow, late_payment_workflow_id


async def test_a_dispute_that_joins_a_waiting_run_is_recorded_and_flagged(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    order_id = uuid.uuid4()
    pi = f"pi_{uuid.uuid4().hex[:8]}"
    backend.rows[order_id] = OrderStatus.Delivered
    intent = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), status="processing")
    backend.intents[pi] = intent
    # An event for a closed order whose PaymentIntent is mid-charge: its run waits.
    await commands.settle_late(order_id, stripe_event(pi, "payment_intent.processing"))
    await until("the run read the PaymentIntent", lambda: backend.retrieve_calls >= 1)
    handle = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    await asyncio.sleep(0.5)  # it is waiting for its next look now
    assert (await handle.query(LatePaymentWorkflow.needs_attention)) is None
    # The charge then settles and the cardholder disputes it, while the run still waits.
    intent.status = "succeeded"
    backend.disputes[pi] = DisputeInfo(dispute_id="dp_1", status="needs_response", amount=AMOUNT)
    await commands.settle_late(order_id, stripe_event(pi, "charge.dispute.created"))
    await until("the dispute recorded on the row", lambda: bool(backend.recorded))
    assert [r.dispute_status for r in backend.recorded] == ["needs_response"]
    flagged = await handle.query(LatePaymentWorkflow.needs_attention)
    assert flagged is not None and "dispute" in flagged and pi in flagged, flagged
    assert backend.refund_calls == 0  # the order's own payment: nothing refunded
    await handle.terminate("test over")


async def test_events_that_come_together_are_each_handled_once(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    """A payment that does not pay its order (cancelled) and a refund event for it arrive
    at once: the money is refunded once and the refund recorded, and the run ends."""
    order_id = uuid.uuid4()
    pi = f"pi_{uuid.uuid4().hex[:8]}"
    backend.rows[order_id] = OrderStatus.Cancelled
    backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), status="succeeded")
    await asyncio.gather(
        commands.settle_late(order_id, stripe_event(pi, "payment_intent.succeeded")),
        commands.settle_late(order_id, stripe_event(pi, "charge.refunded")),
        commands.settle_late(order_id, stripe_event(pi, "payment_intent.succeeded")),
    )
    handle = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    note = await asyncio.wait_for(handle.result(), timeout=20)
    assert list(backend.refunds.values()) == [pi], backend.refunds
    assert "refunded" in note, note


async def test_a_return_refund_that_fails_after_close_is_owed_and_made_again(
    temporal_client: Client, commands: OrderCommands, backend: Backend
) -> None:
    """A delivered order whose workflow closed: a return's refund fails at Stripe later.
    The after-close workflow flags the amount owed; ops' retry refunds it again under the
    return's next key, once, for that amount (never the whole payment)."""
    order_id, pi, key = delivered_with_a_return(backend, failed=True)
    await commands.settle_late(order_id, stripe_event(pi, "refund.failed"))
    handle = temporal_client.get_workflow_handle(late_payment_workflow_id(pi))
    flag = await flag_of(temporal_client, pi, lambda f: "owed" in f)
    assert flag is not None and "5400" in flag, flag
    assert list(backend.refunds) == [key]  # nothing made again before ops say so
    await handle.execute_update(LatePaymentWorkflow.retry)
    note = await asyncio.wait_for(handle.result(), timeout=20)
    assert list(backend.refunds) == [key, f"{key}:again-1"], note
    assert backend.refund_amounts[f"{key}:again-1"] == 5400
