"""How an order is indexed for ops' searches: the API starts the workflow with its search
attributes, and the workflow upserts only what the saved row differs in."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy

from api.order_commands import start_order
from tests.support.workflows import STAND_IN_TOTAL, Harness, order_request, priced
from vult.domain.contracts import OrderWorkflowInput
from vult.temporal import search_attributes as sa
from workflows.order import OrderWorkflow, workflow_id_for


async def upserts(handle: WorkflowHandle) -> int:
    """Upserts of the order's own attributes (a `workflow.patched` makes Temporal's
    TemporalChangeVersion upsert too: not ours to count)."""
    history = await handle.fetch_history()
    return sum(
        e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and set(
            e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        )
        != {"TemporalChangeVersion"}
        for e in history.events
    )


async def indexed(handle: WorkflowHandle) -> dict[str, object]:
    found = (await handle.describe()).typed_search_attributes
    return {key.name: found.get(key) for key in sa.ALL}


async def test_an_order_placed_by_the_api_is_indexed_without_an_upsert(harness: Harness) -> None:
    placed, handle = await harness.place()
    assert await upserts(handle) == 0
    assert await indexed(handle) == {
        "OrderNumber": placed.order_number,
        "CustomerEmail": "ann@example.com",
        "OrderStatus": "Pending",
        "OrderTotal": float(STAND_IN_TOTAL),
    }
    await handle.execute_update(OrderWorkflow.request_payment)
    assert (await indexed(handle))["OrderStatus"] == "PaymentProcessing"
    assert await upserts(handle) == 1


async def test_a_total_that_changed_since_the_quote_is_indexed_again(harness: Harness) -> None:
    _, handle = await harness.place(quoted_total=Decimal("99.00"))
    assert (await indexed(handle))["OrderTotal"] == float(STAND_IN_TOTAL)
    assert await upserts(handle) == 1


async def test_a_start_without_search_attributes_is_indexed_in_full(harness: Harness) -> None:
    """Workflows started before the API indexed at start (and their histories) still work."""
    order_id = uuid.uuid4()
    start = WithStartWorkflowOperation(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=order_id, request=order_request()),
        id=workflow_id_for(order_id),
        task_queue=harness.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    placed = await harness.client.execute_update_with_start_workflow(
        OrderWorkflow.place, start_workflow_operation=start
    )
    handle = await start.workflow_handle()
    assert await indexed(handle) == {
        "OrderNumber": placed.order_number,
        "CustomerEmail": "ann@example.com",
        "OrderStatus": "Pending",
        "OrderTotal": float(STAND_IN_TOTAL),
    }


async def test_a_refused_order_is_not_left_indexed_as_pending(harness: Harness) -> None:
    order_id = uuid.uuid4()
    request = order_request(uuid.uuid4())
    start = start_order(
        order_id,
        request,
        request.fingerprint(),
        priced(request, Decimal(1)),
        harness.task_queue,
        harness.timing,
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await harness.client.execute_update_with_start_workflow(
            OrderWorkflow.place, start_workflow_operation=start
        )
    handle = harness.client.get_workflow_handle(workflow_id_for(order_id))
    assert await indexed(handle) == dict.fromkeys(
        ["OrderNumber", "CustomerEmail", "OrderStatus", "OrderTotal"]
    )
