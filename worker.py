"""The worker: runs OrderWorkflow and its activities on the task queue.

python3 tasks.py worker        (or: python worker.py, inside the project's environment)
"""

from __future__ import annotations

import asyncio
import logging
import signal

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.event_delivery import EventDeliveryActivities
from activities.order_db import OrderDbActivities
from activities.order_events import Outbox
from activities.order_mail import MailSettings
from activities.order_resume import OrderResumeActivities
from activities.stripe_payments import StripeActivities
from vult.db.engine import make_engine
from vult.process.event_loop import run
from vult.process.logging import configure_logging
from vult.process.memory import trim_periodically, tune_malloc
from vult.process.settings import Settings, get_settings
from vult.process.stripe_client import make_stripe_client
from vult.temporal.client import connect
from vult.temporal.deployments import deployment_config, promote_on_start
from vult.temporal.sandbox import sandbox_runner
from workflows import declared_activities as declared
from workflows.declared_activities import DELIVERY, ORDER_DB, RESUME, STRIPE
from workflows.event_delivery import EnableEndpointWorkflow, EventDeliveryWorkflow
from workflows.late_payment import LatePaymentWorkflow
from workflows.order import OrderWorkflow
from workflows.order_sweep import OrderSweepWorkflow, ResumeOrderWorkflow


def outbox_of(client: Client, settings: Settings) -> Outbox:
    """Where order events go: the configured endpoints, the customer's mail when an SMTP
    server is configured (activities/order_events.py)."""
    return Outbox(
        client=client,
        task_queue=settings.delivery_task_queue,
        endpoints=settings.webhook_endpoints,
        mails=bool(settings.smtp_host),
        retry_delays=settings.delivery_retry_delays,
    )


def mail_settings(settings: Settings) -> MailSettings | None:
    if not settings.smtp_host:
        return None
    return MailSettings(
        shop_name=settings.shop_name,
        shop_url=settings.shop_url,
        mail_from=settings.mail_from,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_timeout_seconds=settings.smtp_timeout_seconds,
        smtp_username=settings.smtp_username,
        smtp_password=settings.smtp_password.get_secret_value(),
        smtp_starttls=settings.smtp_starttls,
        templates_dir=settings.mail_templates_dir,
    )


class Workers:
    """The worker process's Temporal workers: the orders' task queue, and the order events'
    deliveries on a queue of their own with slots of their own (a slow receiver holds
    only those). Run, shut down and entered together."""

    def __init__(self, orders: Worker, deliveries: Worker) -> None:
        self.orders, self.deliveries = orders, deliveries

    async def run(self) -> None:
        await asyncio.gather(self.orders.run(), self.deliveries.run())

    async def shutdown(self) -> None:
        await asyncio.gather(self.orders.shutdown(), self.deliveries.shutdown())

    async def __aenter__(self) -> Workers:
        await self.orders.__aenter__()
        try:
            await self.deliveries.__aenter__()
        except BaseException:
            await self.orders.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.deliveries.__aexit__(None, None, None)
        finally:
            await self.orders.__aexit__(None, None, None)


def build_worker(
    client: Client, settings: Settings, engine: AsyncEngine, stripe_client: stripe.StripeClient
) -> Workers:
    outbox = outbox_of(client, settings)
    db = OrderDbActivities(engine, settings.pricing(), outbox)
    delivery = EventDeliveryActivities(
        engine,
        settings.webhook_endpoints,
        mail_settings(settings),
        settings.webhook_timeout_seconds,
        outbox,
    )
    payments = StripeActivities(stripe_client, settings.stripe_owner)
    resume = OrderResumeActivities(
        engine,
        client,
        stripe_client,
        settings.temporal_task_queue,
        settings.order_timing(),
        settings.payment_capture,
    )
    activities = declared.registered(
        {ORDER_DB: db, STRIPE: payments, RESUME: resume, DELIVERY: delivery}
    )
    version = deployment_config(settings.worker_deployment_name, settings.worker_build_id)
    tries = settings.delivery_max_concurrent_tries
    deliveries = Worker(
        client,
        task_queue=settings.delivery_task_queue,
        workflows=[EventDeliveryWorkflow, EnableEndpointWorkflow],
        activities=activities,
        workflow_runner=sandbox_runner(),
        deployment_config=version,
        max_cached_workflows=100,
        max_concurrent_workflow_tasks=tries,
        max_concurrent_activities=tries,
        max_concurrent_local_activities=tries,
    )
    orders = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[OrderWorkflow, LatePaymentWorkflow, OrderSweepWorkflow, ResumeOrderWorkflow],
        activities=activities,
        workflow_runner=sandbox_runner(),
        deployment_config=version,
        # Orders wait for days between steps: keep the active ones cached, let idle ones be
        # evicted (they replay from history when their next event comes) to bound memory.
        max_cached_workflows=settings.worker_max_cached_workflows,
        # Never more workflow tasks at once than workflows cached: under a flash sale the
        # extra tasks wait at the server instead of evicting workflows mid-run, which would
        # make every next task replay its history (issue 32).
        max_concurrent_workflow_tasks=min(100, settings.worker_max_cached_workflows),
        max_concurrent_activities=100,
        max_concurrent_local_activities=100,
    )
    return Workers(orders, deliveries)


def _report_promotion(task: asyncio.Task[bool]) -> None:
    """A worker whose build could not be made current keeps polling (an operator can
    promote it); it says why, since no order runs on it until then."""
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("vult.worker").error(
            "could not make this build current (WORKER_PROMOTE): %s", task.exception()
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
            log = logging.getLogger("vult.worker")
            log.info(
                "worker running on task queue %r at %s as build %s of deployment %s; "
                "metrics at http://%s/metrics",
                settings.temporal_task_queue,
                settings.temporal_address,
                settings.worker_build_id,
                settings.worker_deployment_name,
                settings.worker_metrics_address,
            )
            promoting = asyncio.create_task(
                promote_on_start(
                    client,
                    settings.worker_deployment_name,
                    settings.worker_build_id,
                    settings.worker_promote,
                )
            )
            promoting.add_done_callback(_report_promotion)
            trimming = asyncio.create_task(trim_periodically())
            await stop.wait()
            promoting.cancel()
            trimming.cancel()
    finally:
        await stripe_http.close_async()
        await engine.dispose()


if __name__ == "__main__":
    tune_malloc()  # before Temporal's core and the workflow threads start
    run(main())
