"""The whole system on real programs: PostgreSQL, the Temporal dev server, localstripe driven
through the official stripe SDK, the project's worker, and the API served over HTTP (so the
emulator's signed webhooks reach it as they would in production)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from api.app import create_app
from dev.stack.procs import free_port, port_open
from dev.stack.stripe_emulator import register_webhook
from vult.db.engine import make_engine
from vult.process.payload_keys import new_key_spec
from vult.process.settings import Settings
from vult.process.stripe_client import make_stripe_client
from vult.temporal.client import connect
from vult.temporal.deployments import set_current
from worker import build_worker

WEBHOOK_SECRET = f"whsec_test_{uuid.uuid4().hex}"
OPS_TOKEN = f"ops-{uuid.uuid4().hex}"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
CODEC_TOKEN = f"codec-{uuid.uuid4().hex}"
# Two keys: the first encrypts, the second stands for a key being rotated out.
PAYLOAD_KEYS = f"{new_key_spec('test-2')},{new_key_spec('test-1')}"
RUNNER = "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001"  # 129.99
SOCKS = "6f1c2a3e-0005-4c1b-9a55-1d2f8e9a0005"  # 12.35, size M
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"


def order_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customerEmail": "ann@example.com",
        "shippingAddress": {
            "fullName": "Ann Lee",
            "addressLine1": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62701",
            "country": "US",
            "phone": "+1 555 0100",
        },
        "lineItems": [
            {"productId": RUNNER, "quantity": 2},
            {"productId": SOCKS, "quantity": 1, "size": "L"},
        ],
    }
    body.update(changes)
    return body


@pytest.fixture(scope="session")
def settings(database_url: str, temporal_address: str, stripe_api_base: str) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=temporal_address,
        temporal_task_queue=f"integration-{uuid.uuid4()}",
        stripe_api_base=stripe_api_base,
        stripe_webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        ops_api_token=OPS_TOKEN,  # type: ignore[arg-type]
        codec_auth_token=CODEC_TOKEN,  # type: ignore[arg-type]
        payload_encryption_keys=PAYLOAD_KEYS,  # type: ignore[arg-type]
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


@dataclass
class RunningWorker:
    client: Client
    settings: Settings
    engine: AsyncEngine
    stripe_client: stripe.StripeClient
    _task: asyncio.Task[None] | None = None
    _worker: Worker | None = None

    async def start(self) -> None:
        self._worker = build_worker(self.client, self.settings, self.engine, self.stripe_client)
        self._task = asyncio.create_task(self._worker.run())
        # A versioned worker runs orders once its build is current, as the stack's does.
        await set_current(
            self.client, self.settings.worker_deployment_name, self.settings.worker_build_id
        )

    async def stop(self) -> None:
        """Shut the worker down, as a deploy or a crash would take it away."""
        assert self._worker is not None and self._task is not None
        await self._worker.shutdown()
        await self._task
        self._worker = self._task = None


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


@dataclass
class Webhooks:
    """The emulator's delivery of signed events to our API, which a test may cut."""

    api_base: str
    name: str
    url: str

    @contextlib.contextmanager
    def lost(self) -> Iterator[None]:
        dead = f"http://127.0.0.1:{free_port()}/nowhere"
        register_webhook(self.api_base, name=self.name, url=dead, secret=WEBHOOK_SECRET)
        try:
            yield
        finally:
            register_webhook(self.api_base, name=self.name, url=self.url, secret=WEBHOOK_SECRET)


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


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The API with these settings on a real port, in its own thread and event loop, as
    uvicorn serves it; stopped on leaving."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if port_open(port) and server.started:
            break
        threading.Event().wait(0.05)
    else:
        raise RuntimeError("the API did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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


async def pay_with_card(client: stripe.StripeClient, payment_intent_id: str, number: str) -> str:
    """What Stripe.js does in the browser: attach a card, then confirm the PaymentIntent."""
    method = await client.v1.payment_methods.create_async(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    await client.v1.payment_intents.update_async(
        payment_intent_id, params={"payment_method": method.id}
    )
    try:
        return (await client.v1.payment_intents.confirm_async(payment_intent_id)).status
    except stripe.CardError as exc:
        return f"declined: {exc.user_message}"


async def wait_for_status(
    http: httpx.AsyncClient, order_id: str, status: str, timeout: float = 15.0
) -> dict[str, Any]:
    """Poll GET /api/orders/{id} until the status shows (bounded in time and count)."""
    body: dict[str, Any] = {}
    for _ in range(int(timeout / 0.1)):
        response = await http.get(f"/api/orders/{order_id}")
        body = response.json()
        if body.get("status") == status:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} did not become {status}; last seen {body}")


async def count_rows(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        orders = (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one()
        items = (await conn.execute(text("SELECT count(*) FROM line_items"))).scalar_one()
    return orders, items


THREE_D_SECURE_CARD = "4000002760003184"
DISPUTED_CARD = "4000000000000259"


async def emulator_control(settings: Settings, path: str, body: dict[str, Any]) -> Any:
    """The emulator's test controls (dev/stack/stripe_money.py, stripe_js.py): what Stripe's
    test mode, a bank or a cardholder would do."""
    key = settings.stripe_secret_key.get_secret_value()
    async with httpx.AsyncClient(base_url=settings.stripe_api_base, timeout=10) as client:
        if path.startswith("/_vult/authenticate"):
            body = {**body, "key": settings.stripe_publishable_key}
            response = await client.post(path, content=json.dumps(body))
        else:
            response = await client.post(
                path, json=body, headers={"Authorization": f"Bearer {key}"}
            )
    response.raise_for_status()
    return response.json()


async def eventually(check: Any, what: str, timeout: float = 15.0) -> Any:
    """Poll `check()` (async) until it returns something truthy (bounded in time and count)."""
    for _ in range(int(timeout / 0.1)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never saw: {what}")
