"""A workflow task can be lost after its local activities wrote the row: its worker or the
Temporal server dies before the task is recorded. The workflow then runs that task again,
and may decide otherwise. Two rules keep the row and the workflow together: an update's
acceptance is recorded before it acts, and a write the row holds at or above the number of
the workflow's next write (made by the lost task) is replaced, not refused as an outside
change (docs/architecture.md, "Writes a lost workflow task made")."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError

from tests.support.workflows import STAND_IN_TOTAL, Backend, Harness
from vult.domain.contracts import (
    CancelOrder,
    OrderState,
    OrderWorkflowInput,
    Payments,
    ResumedRun,
    StatusChange,
)
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow, workflow_id_for

S = OrderStatus
LOCAL_ACTIVITY = "core_local_activity"  # the marker a local activity's result is kept in


def lost_task(backend: Backend, order_id: uuid.UUID, status: S, ahead: int) -> None:
    """What a lost workflow task left on the row: `status`, under a number `ahead` of the
    workflow's last write, stamped by the task that made that write (no later than the
    task that runs it again)."""
    last = backend.stamps[order_id]
    backend.rows[order_id] = status
    backend.stamps[order_id] = last.model_copy(update={"number": last.number + ahead})


async def test_writes_a_lost_task_made_are_replaced_when_the_task_runs_again(
    harness: Harness,
) -> None:
    """Fulfilment records Stripe's amounts on the row (write n), then Processing (n + 1).
    Both landed, and the worker died before the task was recorded: the workflow runs it
    again, and its first write (from Confirmed) meets a row already Processing. Refused as
    an outside change, the task would fail for ever with the order stuck."""
    placed, handle, _ = await harness.paid()
    backend, order_id = harness.backend, placed.order_id
    before = await handle.query(OrderWorkflow.state)
    lost_task(backend, order_id, S.Processing, ahead=2)
    await asyncio.wait_for(handle.execute_update(OrderWorkflow.start_processing), 30)
    state = await handle.query(OrderWorkflow.state)
    assert state.status == backend.rows[order_id] == S.Processing
    assert state.writes == backend.stamps[order_id].number == before.writes + 2
    # The lost task's work made again, under the same numbers: back to what the workflow
    # knew, then on.
    assert backend.changes[-2:] == [(S.Processing, S.Confirmed), (S.Confirmed, S.Processing)]


async def test_a_write_a_lost_update_made_is_replaced_by_the_workflows_next(
    harness: Harness,
) -> None:
    """A cancel's write landed, and the server died before it recorded the task that had
    accepted the update (a build without the acceptance timer): the update is forgotten
    and the order is not cancelled. The row says so again with the workflow's next write."""
    placed, handle, _ = await harness.paid()
    backend, order_id = harness.backend, placed.order_id
    lost_task(backend, order_id, S.Cancelled, ahead=1)
    await asyncio.wait_for(handle.execute_update(OrderWorkflow.start_processing), 30)
    assert (await handle.query(OrderWorkflow.state)).status == S.Processing
    assert backend.rows[order_id] == S.Processing


async def test_an_ended_runs_late_write_does_not_reopen_the_resumed_runs_cancel(
    harness: Harness,
) -> None:
    """The ended run's fulfilment write was in flight when ops terminated it; the resumed
    run (numbering on from the row) cancels and refunds. Then the ended run's write lands:
    another run's, refused, and the order stays Cancelled on the row too."""
    placed, handle, intent = await harness.paid()
    backend, order_id = harness.backend, placed.order_id
    before = await handle.query(OrderWorkflow.state)
    ended = backend.stamps[order_id]
    in_flight = StatusChange(
        order_id=order_id,
        expected=[S.Confirmed],
        new_status=S.Processing,
        at=datetime.now(UTC),
        stamp=ended.model_copy(
            update={"task_began": datetime.now(UTC), "number": before.writes + 1}
        ),
    )
    await handle.terminate("stuck: resumed by ops")
    state = OrderState(  # as activities/order_resume.py builds it from the row
        status=S.Confirmed,
        order_number=placed.order_number,
        total=STAND_IN_TOTAL,
        currency="USD",
        created_at=datetime.now(UTC) - timedelta(minutes=1),
        resumes=[ResumedRun(at=datetime.now(UTC), previous="TERMINATED")],
        catching_up=True,
        payments=Payments(
            attempt=1,
            current=intent.model_copy(update={"client_secret": ""}),
            intent_ids=[intent.payment_intent_id],
            next_reconcile_at=datetime.now(UTC) + timedelta(minutes=15),
        ),
        writes=ended.number,
    )
    resumed = await harness.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=order_id, timing=harness.timing, state=state),
        id=workflow_id_for(order_id),
        task_queue=harness.task_queue,
    )
    cancel = resumed.execute_update(OrderWorkflow.cancel, CancelOrder(reason="changed my mind"))
    await asyncio.wait_for(cancel, 30)
    assert backend.rows[order_id] == S.Cancelled and backend.refunds
    with pytest.raises(ApplicationError):
        await backend.change_order_status(in_flight)
    assert backend.rows[order_id] == S.Cancelled
    assert (await resumed.query(OrderWorkflow.state)).status == S.Cancelled


async def test_a_change_made_outside_the_workflow_is_still_refused(harness: Harness) -> None:
    """A row someone changed by hand (no write number of the workflow's) is not
    overwritten: the workflow's task fails, visible in the Web UI, until ops put it right."""
    placed, handle, _ = await harness.paid()
    backend, order_id = harness.backend, placed.order_id
    backend.rows[order_id] = S.Cancelled  # by hand: the stamp is the workflow's last write
    processing = asyncio.create_task(handle.execute_update(OrderWorkflow.start_processing))
    await eventually_task_fails(handle)
    assert backend.rows[order_id] == S.Cancelled
    backend.rows[order_id] = S.Confirmed  # ops put it right
    await asyncio.wait_for(processing, 30)
    assert backend.rows[order_id] == S.Processing


async def eventually_task_fails(handle: WorkflowHandle[OrderWorkflow, OrderState]) -> None:
    for _ in range(200):
        async for e in handle.fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow task never failed")


async def accepting_tasks_with_writes(handle: WorkflowHandle[OrderWorkflow, OrderState]) -> int:
    """How many workflow tasks both accepted an update and ran a local activity (a row
    write, a Stripe call) in the same completion. `place` is left out: what follows it
    (the row's insert) is the run's, begun by the start, which is recorded before."""
    found = 0
    accepted = wrote = False
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            found += accepted and wrote
            accepted = wrote = False
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = e.workflow_execution_update_accepted_event_attributes.accepted_request
            accepted = accepted or update.input.name != "place"
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            # A patch's marker is not an act; a local activity's is.
            wrote = wrote or e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY
    return found + (accepted and wrote)


async def test_an_update_is_recorded_as_accepted_before_it_acts(harness: Harness) -> None:
    """Otherwise a server that dies before recording the task that accepted an update
    forgets the update (its caller saw an error) while the update's writes stand."""
    _, handle, _ = await harness.paid()
    await handle.execute_update(OrderWorkflow.start_processing)
    placed, cancelled = await harness.place()
    await cancelled.execute_update(OrderWorkflow.cancel, CancelOrder(reason="changed my mind"))
    assert harness.backend.rows[placed.order_id] == S.Cancelled
    for order in (handle, cancelled):
        assert await accepting_tasks_with_writes(order) == 0
