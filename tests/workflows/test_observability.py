"""What ops see of a running order: current details in plain sentences, and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from dev.stack.procs import free_port
from tests.support.workflows import Backend, Harness, event, eventually, stand_in_worker
from vult.domain.contracts import CancelOrder
from vult.domain.status import OrderStatus
from vult.process.settings import Settings
from vult.temporal.client import connect
from workflows.order import OrderWorkflow

S = OrderStatus


async def details(handle: WorkflowHandle) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_current_details_read_as_sentences(harness: Harness) -> None:
    _, handle = await harness.place()
    assert await details(handle) == "Waiting for the customer to pay USD 108.00"
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    assert await details(handle) == f"Waiting for payment of USD 108.00 ({pi})"
    harness.backend.intents[pi].status = "succeeded"
    await handle.signal(OrderWorkflow.payment_event, event(pi))
    await eventually(handle, lambda s: s.status == S.Confirmed)
    assert await details(handle) == f"Paid USD 108.00 ({pi}); waiting for fulfilment"
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))
    assert await details(handle) == f"Cancelled: out of stock; refunds: re_{pi} (pending)"


@pytest.fixture
async def metrics_client(temporal_address: str) -> AsyncIterator[tuple[Client, int]]:
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    yield await connect(Settings(temporal_address=temporal_address), runtime), port


async def test_the_worker_exports_sdk_and_service_metrics(
    metrics_client: tuple[Client, int], task_queue: str
) -> None:
    client, port = metrics_client
    backend = Backend()
    async with stand_in_worker(client, task_queue, backend):
        harness = Harness(client, task_queue, backend)
        _, handle, _ = await harness.paid()
        await handle.execute_update(OrderWorkflow.cancel, CancelOrder())

        text = ""
        async with httpx.AsyncClient() as http:
            for _ in range(50):
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                if "vult_refunds" in text:
                    break
                await asyncio.sleep(0.1)
    samples = {
        line.split("{")[0].split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vult_")
    }
    assert samples.get("vult_orders_created_total") == 1, text
    assert samples.get("vult_payments_succeeded_total") == 1
    assert samples.get("vult_refunds_total") == 1
    assert "temporal_workflow_completed" in text or "temporal_workflow_task" in text


async def test_a_parked_order_is_counted_under_the_name_its_alert_reads(
    metrics_client: tuple[Client, int], task_queue: str
) -> None:
    client, port = metrics_client
    backend = Backend(refuse_refund="This charge is disputed")
    async with stand_in_worker(client, task_queue, backend):
        _, handle, _ = await Harness(client, task_queue, backend).paid()
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(OrderWorkflow.cancel, CancelOrder())
        text = ""
        async with httpx.AsyncClient() as http:
            for _ in range(50):
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                if "vult_orders_needing_attention" in text:
                    break
                await asyncio.sleep(0.1)
    counted = [ln for ln in text.splitlines() if ln.startswith("vult_orders_needing_attention")]
    assert counted and counted[0].startswith("vult_orders_needing_attention_total"), text
    assert float(counted[0].rsplit(" ", 1)[1]) == 1
