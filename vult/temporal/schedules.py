"""The Temporal Schedule that runs the order sweep (workflows/order_sweep.py).

`order-sweep` starts OrderSweepWorkflow every ORDER_SWEEP_INTERVAL; a sweep still running
when the next is due makes that one skip. Its runs (`order-sweep-<time>`) are in the Web
UI under Schedules, each with what it found and resumed. The set-up job creates it, or
brings an existing one to the configured interval and task queue (idempotent).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

SWEEP_SCHEDULE_ID = "order-sweep"


def sweep_schedule(task_queue: str, every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "OrderSweepWorkflow",
            id=SWEEP_SCHEDULE_ID,
            task_queue=task_queue,
            # A sweep takes seconds; one stuck longer than this is ended, the next begins.
            execution_timeout=max(every * 5, timedelta(minutes=10)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_sweep_schedule(client: Client, task_queue: str, every: timedelta) -> bool:
    """Create the sweep's schedule, or update it to `every` on `task_queue`; True when it
    was created."""
    wanted = sweep_schedule(task_queue, every)
    try:
        await client.create_schedule(SWEEP_SCHEDULE_ID, wanted)
        return True
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = current.description.schedule
        schedule.action, schedule.spec, schedule.policy = wanted.action, wanted.spec, wanted.policy
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(SWEEP_SCHEDULE_ID).update(update)
    return False
