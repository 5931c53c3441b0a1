"""The Temporal floor: a workflow with the order's shape of server round trips and no work.

Per lifecycle, like OrderWorkflow: update-with-start answered after a local activity
(create the row); an update that runs two local activities (create the PaymentIntent,
record PaymentProcessing); a signal after which two local activities run (read the
PaymentIntent back, record Confirmed). The activities return at once; payloads are plain JSON.

    python -m dev.bench.floor worker --address 127.0.0.1:7233 --task-queue floor
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from vult.process.event_loop import run

_FAST = timedelta(seconds=10)  # start to close, for every no-op


@activity.defn
async def noop(step: str) -> str:
    return step


@workflow.defn(name="FloorWorkflow")
class FloorWorkflow:
    def __init__(self) -> None:
        self._status: str | None = None
        self._events = 0

    @workflow.run
    async def run(self) -> str:
        await workflow.execute_local_activity(noop, "create", start_to_close_timeout=_FAST)
        self._status = "Pending"
        await workflow.wait_condition(lambda: self._events > 0)
        await workflow.execute_local_activity(noop, "retrieve", start_to_close_timeout=_FAST)
        await workflow.execute_local_activity(noop, "confirm", start_to_close_timeout=_FAST)
        self._status = "Confirmed"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    @workflow.update
    async def place(self) -> str:
        await workflow.wait_condition(lambda: self._status is not None)
        return str(self._status)

    @workflow.update
    async def pay(self) -> str:
        await workflow.execute_local_activity(noop, "payment intent", start_to_close_timeout=_FAST)
        await workflow.execute_local_activity(
            noop, "payment processing", start_to_close_timeout=_FAST
        )
        self._status = "PaymentProcessing"
        return self._status

    @workflow.signal
    def event(self) -> None:
        self._events += 1


async def one_lifecycle(client: Client, task_queue: str) -> str:
    start = WithStartWorkflowOperation(
        FloorWorkflow.run,
        id=f"floor-{uuid.uuid4()}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await client.execute_update_with_start_workflow(
        FloorWorkflow.place, start_workflow_operation=start
    )
    handle = await start.workflow_handle()
    await handle.execute_update(FloorWorkflow.pay)
    await handle.signal(FloorWorkflow.event)
    return await handle.result()


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[noop],
        max_concurrent_workflow_tasks=100,
        max_concurrent_activities=100,
        max_concurrent_local_activities=100,
    ):
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["worker"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    run(serve(args.address, args.task_queue))
