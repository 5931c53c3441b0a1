"""The deploy procedure of docs/operations.md ("Deploying new code"), on the dev server.

Orders are started on build A: one waiting for payment, one with a PaymentIntent open, one
paid and awaiting fulfilment, one parked; a late-payment workflow waits on a payment that is
mid-charge. Build B (tests/support/variants.py), whose OrderWorkflow writes a memo at
delivery (a new command, behind `workflow.patched`), is added, ramped, then made current.
Each old order reaches its end as its versioning behaviour says (orders move to B, the late
payment stays on A), new orders run on B, and rolling back to A works for new orders and for
old ones that never took B's new path. Which build ran each step is read from the history:
every completed workflow task names the build that completed it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from api.errors import BadRequest, OutcomeUnknown
from api.order_commands import OrderCommands
from tests.support.variants import BuildB
from tests.support.workflows import Backend, FakeStripeIntent, Harness, eventually
from vult.domain.contracts import (
    CancelOrder,
    LatePayment,
    OrderState,
    OrderTiming,
    ShipOrder,
)
from vult.domain.pricing import Pricing
from vult.domain.status import OrderStatus
from vult.temporal.deployments import (
    Routing,
    deployment_config,
    routing,
    set_current,
    set_ramping,
)
from vult.temporal.sandbox import sandbox_runner
from workflows.late_payment import LatePaymentWorkflow, late_payment_workflow_id
from workflows.order import OrderWorkflow

# One test that runs for most of a minute or more: handed out first (tests/support/tiers.py).
pytestmark = pytest.mark.long

S = OrderStatus
AUTO_UPGRADE = VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
PINNED = VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
A, B = "1.0.0+gaaaaaaa", "1.1.0+gbbbbbbb"


def build(
    client: Client, task_queue: str, backend: Backend, deployment: str, build_id: str
) -> Worker:
    order = BuildB if build_id == B else OrderWorkflow
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[order, LatePaymentWorkflow],
        activities=backend.activities,
        workflow_runner=sandbox_runner(),
        deployment_config=deployment_config(deployment, build_id),
    )


HOUR = timedelta(hours=1)


async def builds_of(client: Client, workflow_id: str) -> list[str]:
    """The build that completed each workflow task of the workflow, in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in history.events
        if e.HasField("workflow_task_completed_event_attributes")
    ]


async def delivered_by(handle: WorkflowHandle[OrderWorkflow, OrderState]) -> str | None:
    value = await (await handle.describe()).memo_value("deliveredBy", default=None)
    return None if value is None else str(value)


async def fulfil(handle: WorkflowHandle[OrderWorkflow, OrderState]) -> None:
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1Z"))
    await handle.execute_update(OrderWorkflow.deliver)


async def test_orders_keep_working_through_a_deploy_a_ramp_and_a_rollback(
    temporal_client: Client, task_queue: str
) -> None:
    client, backend = temporal_client, Backend()
    deployment = f"deploy-test-{uuid.uuid4().hex[:8]}"
    harness = Harness(client, task_queue, backend)

    async with build(client, task_queue, backend, deployment, A):
        await set_current(client, deployment, A)
        assert await routing(client, deployment) == Routing(A, None, 0.0)

        # Open orders on build A.
        _, pending = await harness.place()
        _, processing = await harness.place()
        await processing.execute_update(OrderWorkflow.request_payment)
        _, paid, _ = await harness.paid()
        parked_order, parked, _ = await harness.paid()
        backend.refuse_refund = "Stripe refused the refund"
        try:
            await parked.execute_update(OrderWorkflow.cancel, CancelOrder(reason="changed mind"))
        except Exception:  # noqa: BLE001 - the 'completed automatically' answer
            pass
        await eventually(parked, lambda s: s.ops.attention is not None)
        backend.refuse_refund = None
        # A payment mid-charge for a closed order: the late-payment workflow waits on it.
        late_pi = "pi_late_1"
        closed_order = uuid.uuid4()
        backend.rows[closed_order] = S.Cancelled
        backend.intents[late_pi] = FakeStripeIntent(
            late_pi, 10800, "usd", str(closed_order), status="processing"
        )
        late = await client.start_workflow(
            LatePaymentWorkflow.run,
            LatePayment(payment_intent_id=late_pi, order_id=closed_order),
            id=late_payment_workflow_id(late_pi) + uuid.uuid4().hex[:6],
            task_queue=task_queue,
        )
        # Its first task read the PaymentIntent (mid-charge) and started its wait.
        await _until(lambda: builds_of(client, late.id), lambda b: len(b) >= 1)
        old = [pending, processing, paid, parked]
        for handle in old:
            assert set(await builds_of(client, handle.id)) == {A}
            info = (await handle.describe()).raw_description.workflow_execution_info
            assert info.versioning_info.behavior == AUTO_UPGRADE

        async with build(client, task_queue, backend, deployment, B):
            # Ramp first: a share of new orders (and of AUTO_UPGRADE tasks) go to B.
            await set_ramping(client, deployment, B, 50.0)
            assert await routing(client, deployment) == Routing(A, B, 50.0)
            ramped = [(await harness.place())[1] for _ in range(16)]
            first_builds = {(await builds_of(client, h.id))[0] for h in ramped}
            assert first_builds == {A, B}, first_builds

            await set_current(client, deployment, B)
            assert await routing(client, deployment) == Routing(B, None, 0.0)

            # A new order runs on B from its first task, B's new path included.
            _, new, _ = await harness.paid()
            await fulfil(new)
            assert set(await builds_of(client, new.id)) == {B}
            assert await delivered_by(new) == "B"
            # One that stays open for returns after its delivery on B's new path.
            keeps = Harness(client, task_queue, backend, timing=OrderTiming(return_window=HOUR))
            kept_order, kept, _ = await keeps.paid()
            await fulfil(kept)
            assert await delivered_by(kept) == "B"

            # Old orders (AUTO_UPGRADE) carry on on B and end there.
            intent = await pending.execute_update(OrderWorkflow.request_payment)
            await harness.settle(pending, intent.payment_intent_id, succeeded=True)
            await fulfil(pending)
            await fulfil(paid)
            await parked.execute_update(OrderWorkflow.retry)
            await eventually(parked, lambda s: s.status == S.Cancelled and s.ops.attention is None)
            for handle in (pending, paid, parked):
                tasks = await builds_of(client, handle.id)
                assert tasks[0] == A and tasks[-1] == B, tasks
            assert await delivered_by(pending) == "B" and await delivered_by(paid) == "B"
            assert backend.refunds, "the parked cancellation refunded on B"
            assert parked_order.order_id in backend.rows

            # The late payment (PINNED) stays on A, and finishes there.
            description = await late.describe()
            versioning = description.raw_description.workflow_execution_info.versioning_info
            assert versioning.deployment_version.build_id == A and versioning.behavior == PINNED
            backend.intents[late_pi].status = "succeeded"
            await late.execute_update(LatePaymentWorkflow.retry)
            assert "refunding" in await late.result()
            assert set(await builds_of(client, late.id)) == {A}

            # Roll back: A is current again. New orders run on A; an old order that never
            # took B's new path finishes on A.
            await set_current(client, deployment, A)
            assert await routing(client, deployment) == Routing(A, None, 0.0)
            _, after_rollback, _ = await harness.paid()
            await fulfil(after_rollback)
            assert set(await builds_of(client, after_rollback.id)) == {A}
            assert await delivered_by(after_rollback) is None
            await harness.settle(processing, backend_pi(backend, processing.id), succeeded=True)
            await fulfil(processing)
            assert (await builds_of(client, processing.id))[-1] == A
            assert (await processing.query(OrderWorkflow.state)).status == S.Delivered

            # The order that took B's new path (delivered on B, open for returns) cannot run
            # on A: a command to it says so and what to do, instead of "outcome unknown".
            commands = OrderCommands(client, task_queue, OrderTiming(), Pricing(), deadline=5.0)
            with pytest.raises(OutcomeUnknown) as stuck:
                await commands.deliver(kept_order.order_id)
            assert "cannot run on the build that is current now" in str(stuck.value), stuck
            assert "send the command again" in str(stuck.value)
            # Rolled forward again, the same command sent again is answered (a delivered
            # order's deliver is refused: its status allows it no more) once the failing
            # task's next retry runs on B.
            await set_current(client, deployment, B)
            answer: Exception | None = None
            for _ in range(12):
                try:
                    await commands.deliver(kept_order.order_id)
                except (OutcomeUnknown, BadRequest) as err:
                    answer = err
                if isinstance(answer, BadRequest):
                    break
            assert isinstance(answer, BadRequest) and "Cannot deliver" in str(answer), answer


def backend_pi(backend: Backend, workflow_id: str) -> str:
    order_id = workflow_id.removeprefix("order-")
    return next(i.id for i in backend.intents.values() if i.order_id == order_id)


async def _until(
    read: Callable[[], Awaitable[list[str]]], check: Callable[[list[str]], bool]
) -> None:
    """Bounded: 100 reads, 50 ms apart."""
    value: list[str] = []
    for _ in range(100):
        value = await read()
        if check(value):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached: {value}")
