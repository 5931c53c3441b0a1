"""A resumed run of OrderWorkflow (its previous run gone while the order could still
change): started from the row's state as activities/order_resume.py builds it, it reads
Stripe's word on every PaymentIntent first and carries on from where the order stands."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowHandle

from tests.support.workflows import STAND_IN_TOTAL, FakeStripeIntent, Harness, eventually
from vult.domain.contracts import (
    Cancelling,
    CancelOrder,
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
    PaymentIntentInfo,
    Payments,
    ResumedRun,
)
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow, workflow_id_for
from workflows.steps import refund_key

S = OrderStatus
AMOUNT = 10800


async def resume(
    harness: Harness,
    status: OrderStatus,
    pis: list[tuple[str, str]],
    *,
    timing: OrderTiming | None = None,
    created_ago: timedelta = timedelta(minutes=1),
    order_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, WorkflowHandle[OrderWorkflow, OrderState]]:
    """A row in `status` whose PaymentIntents (id, Stripe's status) were made in this
    order, the last one current; its workflow gone: the resumed run's start."""
    order_id = order_id or uuid.uuid4()
    backend = harness.backend
    backend.rows[order_id] = status
    for pi, stripe_status in pis:
        backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), stripe_status)
    now = datetime.now(UTC)
    current = pis[-1][0] if pis else None
    state = OrderState(
        status=status,
        order_number="VLT-20260101-000001",
        total=STAND_IN_TOTAL,
        currency="USD",
        created_at=now - created_ago,
        resumes=[ResumedRun(at=now, previous="TERMINATED")],
        catching_up=True,
        payments=Payments(
            attempt=len(pis),
            current=PaymentIntentInfo(
                payment_intent_id=current, client_secret="", amount=AMOUNT, currency="usd"
            )
            if current
            else None,
            intent_ids=[pi for pi, _ in pis],
            next_reconcile_at=now + timedelta(minutes=15),
        ),
        cancelling=Cancelling(
            at=now if status == S.Cancelled else None,
            reason="Cancelled by customer" if status == S.Cancelled else None,
        ),
    )
    handle = await harness.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=order_id, timing=timing or harness.timing, state=state),
        id=workflow_id_for(order_id),
        task_queue=harness.task_queue,
    )
    return order_id, handle


async def test_a_resumed_paid_order_records_the_resume_and_can_be_fulfilled(
    harness: Harness,
) -> None:
    order_id, handle = await resume(harness, S.Confirmed, [("pi_paid_1", "succeeded")])
    state = await eventually(handle, lambda s: not s.catching_up)
    assert state.status == S.Confirmed and state.ops.attention is None
    assert "resumed_at" in harness.backend.fields[order_id]
    assert "pi_paid_1" in state.money.charges  # Stripe's amounts were read
    await handle.execute_update(OrderWorkflow.start_processing)
    assert harness.backend.rows[order_id] == S.Processing
    assert harness.backend.refund_calls == 0


async def test_a_resumed_unpaid_order_still_expires_at_its_payment_window(
    harness: Harness,
) -> None:
    timing = OrderTiming(payment_window=timedelta(seconds=3))
    order_id, handle = await resume(
        harness, S.PaymentProcessing, [("pi_open_1", "requires_payment_method")], timing=timing
    )
    state = await eventually(handle, lambda s: s.status == S.Cancelled, timeout=15)
    assert state.cancelling.reason == "payment window expired"
    assert harness.backend.intents["pi_open_1"].status == "canceled"
    assert harness.backend.refund_calls == 0


async def test_a_payment_that_went_through_while_the_workflow_was_gone_confirms(
    harness: Harness,
) -> None:
    order_id, handle = await resume(harness, S.PaymentProcessing, [("pi_late_1", "succeeded")])
    state = await eventually(handle, lambda s: not s.catching_up)
    assert state.status == S.Confirmed and harness.backend.rows[order_id] == S.Confirmed


async def test_a_cancel_whose_refund_stripe_holds_is_recorded_without_a_second_refund(
    harness: Harness,
) -> None:
    order_id = uuid.uuid4()
    # The previous run refunded (under its key), then was terminated before the row said so.
    harness.backend.refunds[refund_key(order_id, "pi_mid_1")] = "pi_mid_1"
    _, handle = await resume(harness, S.Confirmed, [("pi_mid_1", "succeeded")], order_id=order_id)
    state = await eventually(handle, lambda s: not s.catching_up)
    assert state.status == S.Cancelled and harness.backend.rows[order_id] == S.Cancelled
    assert harness.backend.refund_calls == 0


async def test_a_cancelled_order_whose_payment_is_still_held_is_refunded_once(
    harness: Harness,
) -> None:
    order_id, handle = await resume(harness, S.Cancelled, [("pi_held_1", "succeeded")])
    state = await eventually(handle, lambda s: not s.catching_up)
    assert "pi_held_1" in state.money.refunds
    assert harness.backend.refund_calls == 1
    # A cancel sent again to the resumed run does nothing more.
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
    assert harness.backend.refund_calls == 1


async def test_a_superseded_payment_that_succeeded_is_refunded(harness: Harness) -> None:
    _, handle = await resume(
        harness,
        S.PaymentProcessing,
        [("pi_old_1", "succeeded"), ("pi_new_1", "requires_payment_method")],
    )
    state = await eventually(handle, lambda s: not s.catching_up)
    assert set(state.money.refunds) == {"pi_old_1"} and state.status == S.PaymentProcessing


async def test_a_refund_that_had_failed_waits_for_ops_and_a_retry_refunds_again(
    harness: Harness,
) -> None:
    order_id = uuid.uuid4()
    key = refund_key(order_id, "pi_owed_1")
    harness.backend.refunds[key] = "pi_owed_1"
    harness.backend.refund_outcomes["re_pi_owed_1"] = "failed"
    _, handle = await resume(harness, S.Cancelled, [("pi_owed_1", "succeeded")], order_id=order_id)
    state = await eventually(handle, lambda s: s.ops.attention is not None)
    assert state.ops.retry_at is None and "still owed" in (state.ops.attention or "")
    assert harness.backend.refund_calls == 0  # no refund again without ops
    assert harness.backend.fields[order_id]["stripe_payment_status"] == "refund_failed"
    await handle.execute_update(OrderWorkflow.retry)
    state = await eventually(handle, lambda s: not s.catching_up)
    assert harness.backend.refund_calls == 1
    assert refund_key(order_id, "pi_owed_1", 1) in harness.backend.refunds


async def test_a_command_sent_while_the_resumed_run_catches_up_is_judged_after_it(
    harness: Harness,
) -> None:
    """The row said PaymentProcessing (the old run's last write was still on its way); the
    payment had gone through. Ops' processing, sent before the run has read Stripe, waits
    for it, and is judged on where the order stands then: Confirmed, so it proceeds."""
    harness.backend.retrieves_held = asyncio.Event()
    order_id, handle = await resume(harness, S.PaymentProcessing, [("pi_race_1", "succeeded")])
    processing = asyncio.create_task(handle.execute_update(OrderWorkflow.start_processing))
    await asyncio.sleep(0.5)
    assert not processing.done()  # waiting for the catch-up, not refused on the row's word
    harness.backend.retrieves_held.set()
    await asyncio.wait_for(processing, timeout=10)
    assert harness.backend.rows[order_id] == S.Processing
