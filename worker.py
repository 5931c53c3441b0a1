"""The worker: runs OrderWorkflow and its activities on the task queue.

python3 tasks.py worker        (or: python worker.py, inside the project's environment)
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.order_db import OrderDbActivities, Pricing
from activities.stripe_payments import StripeActivities
from vult.db.engine import make_engine
from vult.event_loop import run
from vult.redaction import configure_logging
from vult.settings import Settings, get_settings
from vult.stripe_client import make_stripe_client
from vult.temporal import connect
from workflows.order import OrderWorkflow

# Modules the sandbox need not re-import for every workflow run. Our own packages are
# included, the workflow module too: they keep no module-level state, and re-executing
# workflows/order.py for each new workflow was ~10% of the worker's CPU. The sandbox's
# runtime checks (no clock, no I/O, no random in workflow code) still apply to them.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "vult",
    "activities",
    "workflows",
    "stripe",
    "sqlalchemy",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(
    client: Client, settings: Settings, engine: AsyncEngine, stripe_client: stripe.StripeClient
) -> Worker:
    db = OrderDbActivities(
        engine, Pricing(settings.tax_rate, settings.shipping_cost, settings.currency)
    )
    payments = StripeActivities(stripe_client)
    activities: Sequence[object] = [
        db.create_order_row,
        db.change_order_status,
        payments.create_payment_intent,
        payments.retrieve_payment_intent,
        payments.cancel_payment_intent,
        payments.refund_payment,
        payments.retrieve_refund,
    ]
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[OrderWorkflow],
        activities=activities,  # type: ignore[arg-type]
        workflow_runner=sandbox_runner(),
        # Orders wait for days between steps: keep the active ones cached, let idle ones be
        # evicted (they replay from history when their next event comes) to bound memory.
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=100,
        max_concurrent_activities=100,
        max_concurrent_local_activities=100,
    )


async def main() -> None:
    configure_logging()
    settings = get_settings()
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.worker_metrics_address)
        )
    )
    client = await connect(settings, runtime)
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    stripe_http = stripe.AIOHTTPClient()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        stripe_client = make_stripe_client(settings, stripe_http)
        async with build_worker(client, settings, engine, stripe_client):
            logging.getLogger("vult.worker").info(
                "worker running on task queue %r at %s; metrics at http://%s/metrics",
                settings.temporal_task_queue,
                settings.temporal_address,
                settings.worker_metrics_address,
            )
            await stop.wait()
    finally:
        await stripe_http.close_async()
        await engine.dispose()


if __name__ == "__main__":
    run(main())
