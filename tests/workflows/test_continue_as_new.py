"""Continue-as-new carries everything the order knows, events received but not yet handled
included. On a dev server of its own that suggests continuing as new after a few dozen
history events, so an order gets there in a test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client

from dev.stack.procs import Children, free_port
from dev.stack.temporal_server import start_temporal
from tests.support.temporal_server import TEST_SERVER
from tests.support.workflows import (
    Backend,
    Harness,
    event,
    eventually,
    order_request,
    stand_in_worker,
)
from vult.domain.contracts import CancelOrder, OrderState, OrderWorkflowInput
from vult.domain.status import OrderStatus
from vult.process.settings import Settings
from vult.temporal.client import connect
from workflows.order import OrderWorkflow, workflow_id_for


@pytest.fixture(scope="module")
def short_history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    children = Children()
    port = free_port()
    log: Path = tmp_path_factory.mktemp("temporal-short") / "temporal.log"
    start_temporal(
        children,
        port=port,
        ui_port=None,
        db_file=None,
        log=log,
        dynamic_config={**TEST_SERVER, "limit.historyCount.suggestContinueAsNew": "60"},
    )
    yield f"127.0.0.1:{port}"
    children.stop_all()


@pytest.fixture
async def short_harness(short_history_server: str) -> AsyncIterator[Harness]:
    client: Client = await connect(Settings(temporal_address=short_history_server))
    backend = Backend()
    task_queue = f"test-{uuid.uuid4()}"
    async with stand_in_worker(client, task_queue, backend):
        yield Harness(client, task_queue, backend)


async def test_an_order_continues_as_new_with_all_it_knows(short_harness: Harness) -> None:
    harness = short_harness
    placed, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    first_run = (await handle.describe()).run_id
    # Enough events to grow the history past the server's suggestion.
    for i in range(40):
        await handle.signal(OrderWorkflow.payment_event, event(f"pi_other_{i}"))
    await eventually(handle, lambda s: "pi_other_39" in (s.payments.last_note or ""), timeout=20)
    assert (await handle.describe()).run_id != first_run  # it did continue as new

    # The new run is the same order: it still confirms on its PaymentIntent.
    await harness.settle(handle, intent.payment_intent_id, succeeded=True)
    state = await handle.query(OrderWorkflow.state)
    assert state.payments.intent_ids == [intent.payment_intent_id]
    assert len(state.seen_event_ids) == 41
    assert harness.backend.rows[placed.order_id] == OrderStatus.Confirmed


async def test_events_the_previous_run_had_not_handled_are_handled_by_the_next(
    harness: Harness,
) -> None:
    """The receiving half of continue-as-new: events that arrived while the last run
    waited for its handlers to finish come with its state and are handled first."""
    order_id = uuid.uuid4()
    harness.backend.rows[order_id] = OrderStatus.Pending  # the row the first run wrote
    carried = OrderState(
        status=OrderStatus.Pending,
        order_number="VLT-20261127-123456",
        total=Decimal("108.00"),
        currency="USD",
        created_at=datetime.now(UTC),
        queued_events=[event("pi_marker", eid="evt_marker")],
    )
    handle = await harness.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order_id=order_id, request=order_request(), state=carried),
        id=workflow_id_for(order_id),
        task_queue=harness.task_queue,
    )
    state = await eventually(handle, lambda s: "pi_marker" in (s.payments.last_note or ""))
    assert state.queued_events == []
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
    assert harness.backend.rows[order_id] == OrderStatus.Cancelled


async def test_a_redelivery_storm_alone_continues_a_confirmed_order_as_new(
    short_harness: Harness,
) -> None:
    """A Confirmed order has no timer: only the redeliveries themselves can bring the
    main loop to its continue-as-new check."""
    harness = short_harness
    placed, handle, intent = await harness.paid()
    first_run = (await handle.describe()).run_id
    same = event(intent.payment_intent_id, eid="evt_redelivered")
    for _ in range(80):  # the same event, again and again: each grows the history
        await handle.signal(OrderWorkflow.payment_event, same)
    for _ in range(100):
        if (await handle.describe()).run_id != first_run:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("a redelivery storm never continued the order as new")
    state = await handle.query(OrderWorkflow.state)
    assert state.status == OrderStatus.Confirmed and "evt_redelivered" in state.seen_event_ids
