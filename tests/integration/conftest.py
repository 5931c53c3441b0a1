"""The whole system on real programs: PostgreSQL, the Temporal dev server, localstripe driven
through the official stripe SDK, the project's worker, and the API served over HTTP (so the
emulator's signed webhooks reach it as they would in production)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from dev.stack.procs import free_port
from dev.stack.stripe_emulator import register_webhook
from tests.support.integration import (
    CODEC_TOKEN,
    OPS_TOKEN,
    PAYLOAD_KEYS,
    WEBHOOK_SECRET,
    RunningWorker,
    Webhooks,
    serve,
)
from vult.db.engine import make_engine
from vult.process.settings import Settings
from vult.process.stripe_client import make_stripe_client
from vult.temporal.client import connect


@pytest.fixture(scope="session")
def settings(database_url: str, temporal_address: str, stripe_api_base: str) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=temporal_address,
        temporal_task_queue=f"integration-{uuid.uuid4()}",
        stripe_api_base=stripe_api_base,
        stripe_webhook_secret=WEBHOOK_SECRET,
        ops_api_token=OPS_TOKEN,
        codec_auth_token=CODEC_TOKEN,
        payload_encryption_keys=PAYLOAD_KEYS,
        api_metrics_address=f"127.0.0.1:{free_port()}",
        # Short timers, so reconciliation of a lost webhook shows within a test.
        payment_reconcile_after=timedelta(seconds=3),
        payment_reconcile_max_interval=timedelta(seconds=5),
        # Delivered orders' workflows close soon after (30 days in production).
        return_window=timedelta(seconds=3),
    )


@pytest.fixture(scope="session")
async def temporal_client(settings: Settings) -> Client:
    """Here the client (and so the worker built on it) encrypts payloads, as in production."""
    return await connect(settings)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def worker(
    temporal_client: Client,
    settings: Settings,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
) -> AsyncIterator[RunningWorker]:
    running = RunningWorker(temporal_client, settings, engine, stripe_client)
    await running.start()
    yield running
    if running._worker is not None:
        await running.stop()


@pytest.fixture(scope="session")
def webhooks(settings: Settings, api_url: str) -> Webhooks:
    return Webhooks(settings.stripe_api_base, "vult-test", f"{api_url}/api/webhooks/stripe")


@pytest.fixture(scope="session")
def api_url(settings: Settings) -> Iterator[str]:
    """The API on a real port, in its own thread and event loop, as uvicorn serves it."""
    with serve(settings) as url:
        register_webhook(
            settings.stripe_api_base,
            name="vult-test",
            url=f"{url}/api/webhooks/stripe",
            secret=WEBHOOK_SECRET,
        )
        yield url


@pytest.fixture(scope="session")
def at_shipment_url(settings: Settings) -> Iterator[str]:
    """An API placing orders under PAYMENT_CAPTURE=at_shipment (the same worker runs them)."""
    changed = settings.model_copy(
        update={"payment_capture": "at_shipment", "api_metrics_address": ""}
    )
    with serve(changed) as url:
        yield url


@pytest.fixture
async def http(api_url: str, worker: RunningWorker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def stripe_client(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.AIOHTTPClient()
    yield make_stripe_client(settings, http)
    await http.close_async()
