"""An update's acceptance is recorded before it acts (OrderWorkflow._accepted: the no-op
activity accept_update ends the task that accepted it). Two ways it could go wrong: the
acceptance waiting behind another order's slow Stripe call for a worker's activity slot,
and a guard checked before the acceptance trusted after it."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Worker

from tests.support.after_close import until
from tests.support.workflows import Backend, Harness, event, eventually, stand_in_worker
from vult.domain.contracts import CancelOrder
from vult.temporal.sandbox import sandbox_runner
from workflows.order import OrderWorkflow


async def test_a_slow_refund_on_one_order_does_not_hold_commands_on_another(
    temporal_client: Client, task_queue: str
) -> None:
    """Every activity slot held by a slow Stripe call (one slot here, held by a refund):
    another order's payment request is accepted all the same and answers (its acceptance
    times out unrun after a moment, the task that scheduled it recorded)."""
    backend = Backend()
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        activities=backend.activities,
        workflow_runner=sandbox_runner(),
        max_concurrent_activities=1,
    ):
        harness = Harness(temporal_client, task_queue, backend)
        _, paid, _ = await harness.paid()
        _, other = await harness.place()  # a new order, Pending, nothing to do with the first
        backend.refunds_held = asyncio.Event()  # Stripe is slow to answer refunds
        cancelling = asyncio.create_task(
            paid.execute_update(OrderWorkflow.cancel, CancelOrder(reason="changed my mind"))
        )
        await until("the refund under way", lambda: backend.refund_calls > 0)
        try:
            intent = await asyncio.wait_for(other.execute_update(OrderWorkflow.request_payment), 10)
            assert intent.payment_intent_id
        finally:
            backend.refunds_held.set()
            await cancelling


class _LateAcceptances(Backend):
    """The first two acceptances of `retry` come back late, each when its gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gates = [asyncio.Event(), asyncio.Event()]

    @activity.defn(name="accept_update")
    async def accept_update(self, update: str) -> None:
        self.accepted.append(update)
        if update == "retry" and (n := self.accepted.count("retry")) <= 2:
            await self.gates[n - 1].wait()


async def test_a_second_retry_accepted_meanwhile_gives_no_consent_to_refund_again(
    temporal_client: Client, task_queue: str
) -> None:
    """Two ops retries pass the validator together (ops sent again after no answer). One
    unparks the order and its refund is made again; the other, acting after that,
    is refused ("needs no attention") and leaves no standing consent: when that refund
    fails too, the order waits for ops instead of refunding a third time."""
    backend = _LateAcceptances()
    async with stand_in_worker(temporal_client, task_queue, backend):
        harness = Harness(temporal_client, task_queue, backend)
        _, handle, intent = await harness.paid()
        pi = intent.payment_intent_id
        await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))
        backend.refund_outcomes[f"re_{pi}"] = "failed"
        await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.refund.updated"))
        await eventually(handle, lambda s: s.ops.attention is not None)

        backend.refunds_held = asyncio.Event()
        first = asyncio.create_task(handle.execute_update(OrderWorkflow.retry))
        second = asyncio.create_task(handle.execute_update(OrderWorkflow.retry))
        await until("both retries accepted", lambda: backend.accepted.count("retry") == 2)
        # One acts: the refund is made again. (Which one may vary: an acceptance the test
        # holds past its 2 s times out, and that retry acts then, held or not.)
        backend.gates[0].set()
        await until("a second refund under way", lambda: backend.refund_calls >= 2)
        backend.gates[1].set()  # the other acts while that refund is under way
        await asyncio.sleep(0.3)
        backend.refunds_held.set()
        answers = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 20)
        refused = [a for a in answers if isinstance(a, WorkflowUpdateFailedError)]
        assert len(refused) == 1, f"one retry acts and the other is refused: {answers}"
        assert "needs no attention" in str(refused[0].cause), refused[0].cause
        await eventually(handle, lambda s: pi in s.money.refunds)
        assert len(backend.refunds) == 2

        # The second refund fails at Stripe too: parked, and ops have not asked again.
        backend.refund_outcomes[f"re_{pi}_2"] = "failed"
        await handle.signal(OrderWorkflow.payment_event, event(pi, "charge.refund.updated"))
        await eventually(handle, lambda s: s.ops.attention is not None)
        await handle.signal(OrderWorkflow.payment_event, event(pi, "refund.failed"))
        await asyncio.sleep(1.5)
        state = await handle.query(OrderWorkflow.state)
        assert len(backend.refunds) == 2, sorted(backend.refunds)
        assert not state.money.retry_asked
