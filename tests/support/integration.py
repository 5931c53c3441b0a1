"""Helpers for the tests that run the whole system on real programs (PostgreSQL, the
Temporal dev server, localstripe through the official stripe SDK, the project's worker and
its API over HTTP): settings and secrets, the worker and API runners, order bodies, cards,
paying, waiting for an order's status, webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus

from api.app import create_app
from dev.stack.procs import Children, free_port, port_open
from dev.stack.stripe_emulator import register_webhook, start_localstripe
from vult.process.payload_keys import new_key_spec
from vult.process.settings import Settings
from vult.temporal.deployments import set_current
from worker import Workers, build_worker

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


@dataclass
class RunningWorker:
    client: Client
    settings: Settings
    engine: AsyncEngine
    stripe_client: stripe.StripeClient
    _task: asyncio.Task[None] | None = None
    _worker: Workers | None = None

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


async def place(http: httpx.AsyncClient, email: str = "ann@example.com") -> dict[str, Any]:
    response = await http.post("/api/orders", json=order_body(customerEmail=email))
    assert response.status_code == 201, response.text
    return response.json()


async def pay(http: httpx.AsyncClient, order: dict[str, Any]) -> str:
    response = await http.post(f"/api/orders/{order['orderId']}/payment")
    assert response.status_code == 200, response.text
    return str(response.json()["paymentIntentId"])


async def confirmed_order(http: httpx.AsyncClient, client: stripe.StripeClient) -> tuple[dict, str]:
    order = await place(http)
    pi = await pay(http, order)
    assert await pay_with_card(client, pi, GOOD_CARD) == "succeeded"
    await wait_for_status(http, order["orderId"], "Confirmed")
    return order, pi


async def refunds_at_stripe(client: stripe.StripeClient, pi: str) -> list[Any]:
    """Stripe's own record of refunds for a PaymentIntent (none without a charge)."""
    intent = await client.v1.payment_intents.retrieve_async(pi)
    if not intent.to_dict().get("latest_charge"):
        return []  # the emulator cannot list refunds of a PaymentIntent that never charged
    return list((await client.v1.refunds.list_async(params={"payment_intent": pi})).data)


def succeeded_event(payment_intent_id: str, order_id: str, event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": payment_intent_id,
                    "object": "payment_intent",
                    "status": "succeeded",
                    "metadata": {"order_id": order_id},
                }
            },
        }
    ).encode()


async def post_event(http: httpx.AsyncClient, payload: bytes, signature: str) -> httpx.Response:
    return await http.post(
        "/api/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": signature, "content-type": "application/json"},
    )


async def delivered_order(
    http: httpx.AsyncClient, client: stripe.StripeClient, key: str | None = None
) -> dict[str, Any]:
    if key is None:
        order, _ = await confirmed_order(http, client)
    else:
        headers = {"Idempotency-Key": key}
        order = (await http.post("/api/orders", json=order_body(), headers=headers)).json()
        assert await pay_with_card(client, await pay(http, order), GOOD_CARD) == "succeeded"
        await wait_for_status(http, order["orderId"], "Confirmed")
    for step in ("processing", "ship", "deliver"):
        body = {"carrier": "UPS", "trackingNumber": "1Z1"} if step == "ship" else None
        response = await http.post(
            f"/api/ops/orders/{order['orderId']}/{step}", json=body, headers=OPS
        )
        assert response.status_code == 204, response.text
    return order


async def closed(temporal: Client, workflow_id: str, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.1)):
        described = await temporal.get_workflow_handle(workflow_id).describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            assert described.status == WorkflowExecutionStatus.COMPLETED
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} still running")


def emulator_client(port: int, http: stripe.HTTPClient) -> stripe.StripeClient:
    """The official SDK pointed at an emulator of a test's own, with a secret key."""
    return stripe.StripeClient(
        "sk_test_emulator", base_addresses={"api": f"http://127.0.0.1:{port}"}, http_client=http
    )


@contextlib.contextmanager
def own_emulator(log: Path) -> Iterator[int]:
    """A Stripe emulator of a module's own (a fresh store) on a free port; stopped after."""
    children, port = Children(), free_port()
    try:
        start_localstripe(children, port=port, log=log, state_file=None)
        yield port
    finally:
        children.stop_all()


@contextlib.asynccontextmanager
async def emulator_session(port: int) -> AsyncIterator[stripe.StripeClient]:
    """`emulator_client` on an HTTP client of its own, closed after."""
    http = stripe.AIOHTTPClient()
    try:
        yield emulator_client(port, http)
    finally:
        await http.close_async()
