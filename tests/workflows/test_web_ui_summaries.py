"""Ops read an order in the Web UI without decoding its input (issue 30): its workflow
carries a summary (number, customer, total), and its timer is named for the deadline it
waits for (the timeline shows "payment window", "return window over", ...)."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from tests.support.workflows import Harness
from vult.domain.contracts import OrderState
from workflows.decisions import Timer
from workflows.order import OrderWorkflow


async def summaries(
    harness: Harness, handle: WorkflowHandle[OrderWorkflow, OrderState], kind: EventType.ValueType
) -> list[str]:
    """The Web UI's line beside each event of `kind` in the order's history."""
    names = []
    converter = harness.client.data_converter
    async for e in handle.fetch_history_events():
        if e.event_type != kind:
            continue
        summary = e.user_metadata.summary
        names.append((await converter.decode([summary], [str]))[0] if summary.data else "(no name)")
    return names


async def test_an_order_reads_at_a_glance(harness: Harness) -> None:
    placed, handle = await harness.place()
    summary = await (await handle.describe()).static_summary()
    assert summary == f"Order {placed.order_number} · ann@example.com · 108.00 USD", summary
    await handle.execute_update(OrderWorkflow.request_payment)
    names = await summaries(harness, handle, EventType.EVENT_TYPE_TIMER_STARTED)
    assert names and set(names) <= {str(t) for t in Timer}, names
    assert str(Timer.PAYMENT_WINDOW) in names, names
    # The payment request's acceptance, recorded before it acts, says so.
    scheduled = await summaries(harness, handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    assert "Accept the request_payment update before acting on it" in scheduled, scheduled
    await handle.terminate("test over")
