"""Order events on the real programs: the order workflow writes each fact's event in the
transaction that records the fact, and a delivery workflow per (event, target) posts it to
the shop's endpoints (Standard Webhooks, checked here with the reference library) and mails
the customer through SMTP. The receiver and the SMTP server are the local inbox (dev/inbox/),
a process of this module's own whose faults play a receiver down or gone and an address
refused for good.

The session's worker sends no events (no endpoints, no SMTP server): this module runs a
worker and an API of its own, on a task queue of its own, with the inbox's endpoints, its
SMTP port and short delays between tries."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from temporalio.client import Client, WorkflowHandle

from dev.stack.procs import free_port
from dev.stack.stripe_emulator import register_webhook
from tests.support.inbox import Item, RunningInbox, running_inbox
from tests.support.integration import (
    DECLINED_CARD,
    GOOD_CARD,
    OPS,
    WEBHOOK_SECRET,
    RunningWorker,
    eventually,
    pay,
    pay_with_card,
    place,
    post_event,
    refunds_at_stripe,
    serve,
    wait_for_status,
)
from tests.support.stripe_signing import sign
from vult.db.engine import make_engine
from vult.db.models import EVENT_DELIVERIES, ORDER_EVENTS, ORDERS, WEBHOOK_ENDPOINT_STATES
from vult.domain.contracts import OrderState
from vult.domain.order_events import OrderEventType, event_id
from vult.process.outbound import WebhookEndpoint
from vult.process.settings import Settings
from workflows.order import OrderWorkflow, workflow_id_for

pytestmark = pytest.mark.timeout(60)

E = OrderEventType


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# The inbox's endpoints: one for every event (the shop's system), one this module makes
# answer 503 for a while, one it makes answer 410 (both get order.placed only, so a fault
# set on them touches no other test).
SHOP, FLAKY, GONE = "events-shop", "events-flaky", "events-gone"
# An endpoint of the test's own that keeps every request's headers (the inbox keeps no
# signature), so the signature is checked here with the reference library.
TAP = "events-tap"
SECRETS = {SHOP: _secret(), FLAKY: _secret(), GONE: _secret(), TAP: _secret()}
WANTS = {
    SHOP: ["*"],
    FLAKY: [E.PLACED.value],
    GONE: [E.PLACED.value],
    TAP: [E.PLACED.value, E.PAID.value],
}
EVENT_KEYS = {"id", "type", "timestamp", "orderId", "orderNumber", "data", "detail"}
RETRY_DELAYS = [1.0, 1.0, 2.0]
SHIP = {"carrier": "UPS", "trackingNumber": "1Z999AA10123456784"}


# ---- the receiver of the test's own -------------------------------------------------------


@dataclass
class Tap:
    url: str
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def of(self, webhook_id: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.got if h.get("webhook-id") == webhook_id]


async def tapped(tap: Tap, webhook_id: str) -> list[tuple[dict[str, str], bytes]]:
    async def check() -> list[tuple[dict[str, str], bytes]]:
        return tap.of(webhook_id)

    found: list[tuple[dict[str, str], bytes]] = await eventually(check, f"{webhook_id} tapped")
    return found


@pytest.fixture(scope="module")
async def tap() -> AsyncIterator[Tap]:
    port = free_port()
    kept = Tap(f"http://127.0.0.1:{port}/hooks")

    async def receive(request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        kept.got.append((headers, await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield kept
    await runner.cleanup()


# ---- the module's system: inbox, settings, worker, API ------------------------------------


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningInbox]:
    folder: Path = tmp_path_factory.mktemp("events-inbox")
    endpoints = {name: secret for name, secret in SECRETS.items() if name != TAP}
    with running_inbox(folder, endpoints=endpoints) as running:
        yield running


@pytest.fixture(scope="module")
def events_settings(settings: Settings, inbox: RunningInbox, tap: Tap) -> Settings:
    endpoints = [
        WebhookEndpoint(
            name=name,
            url=tap.url if name == TAP else inbox.webhook_url(name),
            secret=secret,
            events=WANTS[name],
        )
        for name, secret in SECRETS.items()
    ]
    return settings.model_copy(
        update={
            "temporal_task_queue": f"order-events-{uuid.uuid4()}",
            "api_metrics_address": "",
            "webhook_endpoints": endpoints,
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.smtp_port,
            "smtp_timeout_seconds": 5.0,
            "webhook_timeout_seconds": 5.0,
            "delivery_retry_delays": RETRY_DELAYS,
        }
    )


@pytest.fixture(scope="module")
async def db(events_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine of the module's own: its worker's deliveries take connections too."""
    engine = make_engine(events_settings.database_url, pool_size=6)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def events_worker(
    temporal_client: Client,
    events_settings: Settings,
    db: AsyncEngine,
    stripe_client: stripe.StripeClient,
) -> AsyncIterator[RunningWorker]:
    running = RunningWorker(temporal_client, events_settings, db, stripe_client)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture(scope="module")
def events_api(events_settings: Settings) -> Iterator[str]:
    """The API on the module's task queue; the emulator sends it Stripe's events."""
    name = f"vult-events-{uuid.uuid4().hex[:8]}"
    base = events_settings.stripe_api_base
    with serve(events_settings) as url:
        register_webhook(base, name=name, url=f"{url}/api/webhooks/stripe", secret=WEBHOOK_SECRET)
        try:
            yield url
        finally:
            key = events_settings.stripe_secret_key.get_secret_value()
            httpx.delete(
                f"{base}/v1/webhook_endpoints/we_{name}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )


@pytest.fixture
async def shop(events_api: str, events_worker: RunningWorker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=events_api, timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def no_faults_after(inbox: RunningInbox) -> Iterator[None]:
    yield
    inbox.set_faults(smtp="ok")
    for name in (SHOP, FLAKY, GONE):
        inbox.set_faults(webhook={"endpoint": name, "status": 204})


# ---- reading what happened ---------------------------------------------------------------


def an_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def cents(amount: Any) -> int:
    return int(Decimal(str(amount)) * 100)


def dollars(amount: Any) -> str:
    """How the mails write a USD amount: $1,234.50."""
    return f"${Decimal(str(amount)).quantize(Decimal('0.01')):,}"


async def hooks_of(inbox: RunningInbox, order_id: str, endpoint: str = SHOP) -> list[Item]:
    """The requests the inbox got for this order at this endpoint, oldest first."""
    every = await asyncio.to_thread(inbox.deliveries)
    mine = [d for d in every if d["orderId"] == order_id and d["endpoint"] == endpoint]
    return sorted(mine, key=lambda d: int(d["n"]))


async def hooks_until(
    inbox: RunningInbox,
    order_id: str,
    types: Sequence[str],
    endpoint: str = SHOP,
    timeout: float = 20.0,
) -> dict[str, Item]:
    """The answered (2xx) request of each of these event types, once each has come."""

    async def check() -> dict[str, Item] | None:
        answered = {
            d["type"]: d
            for d in await hooks_of(inbox, order_id, endpoint)
            if 200 <= int(d["status"]) < 300
        }
        return answered if set(types) <= answered.keys() else None

    found: dict[str, Item] = await eventually(
        check, f"{sorted(types)} at {endpoint} for order {order_id}", timeout=timeout
    )
    return found


async def mails_to(inbox: RunningInbox, address: str) -> list[Item]:
    every = await asyncio.to_thread(inbox.mails)
    return sorted((m for m in every if address in m["to"]), key=lambda m: int(m["n"]))


async def mail_of(inbox: RunningInbox, address: str, event: str, timeout: float = 20.0) -> Item:
    async def check() -> Item | None:
        found = [m for m in await mails_to(inbox, address) if f"<{event}@" in m["messageId"]]
        return found[0] if found else None

    mail: Item = await eventually(check, f"the mail of {event} to {address}", timeout=timeout)
    return mail


@dataclass(frozen=True)
class EventRow:
    event_id: str
    type: str
    body: dict[str, Any]


@dataclass(frozen=True)
class DeliveryRow:
    event_id: str
    type: str
    target: str
    state: str
    attempts: int
    last_status: int | None
    last_answer: str | None


async def events_of(engine: AsyncEngine, order_id: str) -> list[EventRow]:
    query = (
        select(ORDER_EVENTS.c.event_id, ORDER_EVENTS.c.type, ORDER_EVENTS.c.body)
        .where(ORDER_EVENTS.c.order_id == uuid.UUID(order_id))
        .order_by(ORDER_EVENTS.c.occurred_at, ORDER_EVENTS.c.event_id)
    )
    async with engine.connect() as conn:
        return [EventRow(*row) for row in (await conn.execute(query)).all()]


async def deliveries_of(engine: AsyncEngine, order_id: str) -> list[DeliveryRow]:
    query = (
        select(
            EVENT_DELIVERIES.c.event_id,
            ORDER_EVENTS.c.type,
            EVENT_DELIVERIES.c.target,
            EVENT_DELIVERIES.c.state,
            EVENT_DELIVERIES.c.attempts,
            EVENT_DELIVERIES.c.last_status,
            EVENT_DELIVERIES.c.last_answer,
        )
        .join(ORDER_EVENTS, ORDER_EVENTS.c.event_id == EVENT_DELIVERIES.c.event_id)
        .where(ORDER_EVENTS.c.order_id == uuid.UUID(order_id))
    )
    async with engine.connect() as conn:
        return [DeliveryRow(*row) for row in (await conn.execute(query)).all()]


async def delivery_settled(
    engine: AsyncEngine, order_id: str, event: str, target: str, timeout: float = 20.0
) -> DeliveryRow:
    """The delivery once no try is still to come (delivered, refused, disabled, failed)."""

    async def check() -> DeliveryRow | None:
        for row in await deliveries_of(engine, order_id):
            if row.event_id == event and row.target == target:
                return row if row.state not in ("pending", "failing") else None
        return None

    row: DeliveryRow = await eventually(check, f"{event} to {target} settled", timeout=timeout)
    return row


async def refused_address(engine: AsyncEngine, order_id: str) -> str | None:
    query = select(ORDERS.c.customer_email_refused).where(ORDERS.c.order_id == uuid.UUID(order_id))
    async with engine.connect() as conn:
        value = await conn.scalar(query)
    return None if value is None else str(value)


def the_id(order_id: str, kind: OrderEventType, fact: str = "") -> str:
    return event_id(uuid.UUID(order_id), kind, fact)


async def confirmed(
    shop: httpx.AsyncClient, client: stripe.StripeClient, email: str
) -> tuple[dict[str, Any], str]:
    order = await place(shop, email)
    pi = await pay(shop, order)
    assert await pay_with_card(client, pi, GOOD_CARD) == "succeeded"
    shown = await wait_for_status(shop, order["orderId"], "Confirmed")
    return shown, pi


def check_body(body: dict[str, Any], order: dict[str, Any], kind: OrderEventType) -> None:
    """The shape every receiver gets: the event, and the order as it read when it happened."""
    assert set(body) == EVENT_KEYS, sorted(body)
    assert body["type"] == kind.value
    assert re.fullmatch(r"evt_[0-9a-f]{32}", body["id"]), body["id"]
    assert body["orderId"] == order["orderId"]
    assert body["orderNumber"] == order["orderNumber"]
    assert body["timestamp"].endswith("Z")
    datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    data = body["data"]
    assert data["orderId"] == order["orderId"]
    assert data["orderNumber"] == order["orderNumber"]
    assert data["customerEmail"] == order["customerEmail"]
    assert cents(data["total"]) == cents(order["total"])
    assert isinstance(data["total"], int | float)  # amounts in `data` are numbers
    assert data["currency"] == order["currency"]
    # camelCase, as the API serves an order
    assert {"subTotal", "shippingCost", "lineItems", "shippingAddress"} <= data.keys()
    assert not any("_" in key for key in data), sorted(data)
    assert isinstance(body["detail"], dict)


# ---- the tests ---------------------------------------------------------------------------


async def test_a_purchase_is_told_placed_and_paid_signed_and_mails_one_receipt(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    inbox: RunningInbox,
    tap: Tap,
    db: AsyncEngine,
) -> None:
    email = an_email("receipt")
    order, _ = await confirmed(shop, stripe_client, email)
    oid = order["orderId"]
    got = await hooks_until(inbox, oid, [E.PLACED, E.PAID])

    for kind in (E.PLACED, E.PAID):
        hook = got[kind]
        assert hook["verified"] is True and hook["error"] is None
        body = json.loads(hook["body"])
        check_body(body, order, kind)
        assert hook["webhookId"] == body["id"] == the_id(oid, kind)
        # Checked here too, with the reference library, from what the endpoint received.
        headers, raw = (await tapped(tap, the_id(oid, kind)))[0]
        assert headers["content-type"] == "application/json"
        assert headers["webhook-signature"].startswith("v1,")
        assert Webhook(SECRETS[TAP]).verify(raw, headers) == body
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRETS[SHOP]).verify(raw, headers)  # signed with that endpoint's own
    assert json.loads(got[E.PLACED]["body"])["data"]["status"] == "Pending"
    # `data` is the order as GET /api/orders/{id} serves it once the fact is recorded (a
    # later note of Stripe's details may have touched updatedDate since).
    data = json.loads(got[E.PAID]["body"])["data"]
    assert data == {**order, "updatedDate": data["updatedDate"]}

    paid = the_id(oid, E.PAID)
    mail = await mail_of(inbox, email, paid)
    assert re.fullmatch(rf"<{paid}@[A-Za-z0-9.-]+>", mail["messageId"]), mail["messageId"]
    assert order["orderNumber"] in mail["text"]
    assert dollars(order["total"]) in mail["text"], (dollars(order["total"]), mail["text"])
    assert order["orderNumber"] in mail["subject"]
    row = await delivery_settled(db, oid, paid, "email")
    assert (row.state, row.attempts) == ("delivered", 1)
    await asyncio.sleep(1.0)  # a second mail, were one sent, would be here by now
    assert [m["messageId"] for m in await mails_to(inbox, email)] == [mail["messageId"]]


async def test_a_declined_card_then_a_good_one_is_told_payment_failed_then_paid(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    inbox: RunningInbox,
    db: AsyncEngine,
) -> None:
    email = an_email("declined")
    order = await place(shop, email)
    oid = order["orderId"]
    first = await pay(shop, order)
    assert await pay_with_card(stripe_client, first, DECLINED_CARD) == (
        "declined: Your card was declined."
    )
    await wait_for_status(shop, oid, "Failed")
    second = await pay(shop, order)
    assert await pay_with_card(stripe_client, second, GOOD_CARD) == "succeeded"
    await wait_for_status(shop, oid, "Confirmed")

    got = await hooks_until(inbox, oid, [E.PAYMENT_FAILED, E.PAID])
    failed, paid = json.loads(got[E.PAYMENT_FAILED]["body"]), json.loads(got[E.PAID]["body"])
    assert failed["detail"]["message"] == "Your card was declined."
    assert failed["data"]["status"] == "Failed"
    assert failed["timestamp"] <= paid["timestamp"]
    assert paid["data"]["status"] == "Confirmed"
    told = [d["type"] for d in await hooks_of(inbox, oid) if d["status"] == 204]
    assert told == [E.PLACED, E.PAYMENT_FAILED, E.PAID], told

    mail = await mail_of(inbox, email, failed["id"])
    assert order["orderNumber"] in mail["text"]
    await mail_of(inbox, email, paid["id"])
    rows = await events_of(db, oid)
    assert sorted(r.type for r in rows) == sorted([E.PLACED, E.PAYMENT_FAILED, E.PAID])


async def test_cancelling_a_paid_order_is_told_cancelled_and_refunded_whole(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    inbox: RunningInbox,
    db: AsyncEngine,
) -> None:
    order, pi = await confirmed(shop, stripe_client, an_email("cancel"))
    oid = order["orderId"]
    assert (await shop.post(f"/api/orders/{oid}/cancel")).status_code == 204
    await wait_for_status(shop, oid, "Cancelled")

    got = await hooks_until(inbox, oid, [E.CANCELLED, E.REFUNDED])
    cancelled = json.loads(got[E.CANCELLED]["body"])
    assert cancelled["data"]["status"] == "Cancelled"
    assert cancelled["detail"]["reason"] == "Cancelled by customer"
    refunded = json.loads(got[E.REFUNDED]["body"])
    detail = refunded["detail"]
    at_stripe = await refunds_at_stripe(stripe_client, pi)
    assert [r.amount for r in at_stripe] == [cents(order["total"])]
    assert detail["refundId"] == at_stripe[0].id
    assert re.fullmatch(r"\d+\.\d{2}", detail["amount"]), detail  # a decimal string
    assert Decimal(detail["amount"]) == Decimal(str(order["total"]))
    assert detail["currency"] == "USD"
    assert detail["whole"] is True
    assert detail["purpose"] == "cancellation"
    assert refunded["id"] == the_id(oid, E.REFUNDED, at_stripe[0].id)
    await asyncio.sleep(1.0)  # Stripe's refund events come after the cancellation
    refunds = [d for d in await hooks_of(inbox, oid) if d["type"] == E.REFUNDED]
    assert {d["webhookId"] for d in refunds} == {refunded["id"]}
    rows = await events_of(db, oid)
    assert sorted(r.type for r in rows) == sorted([E.PLACED, E.PAID, E.CANCELLED, E.REFUNDED])


def share(order: dict[str, Any], line: dict[str, Any], quantity: int) -> int:
    """The rule written out (vult/domain/fulfilment.py): the shipped lines' merchandise,
    the order's tax in proportion (half to even), the whole shipping, in cents."""
    merchandise = Decimal(str(line["unitPrice"])) * quantity
    tax = (Decimal(str(order["tax"])) * merchandise / Decimal(str(order["subTotal"]))).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_EVEN
    )
    return cents(merchandise + tax + Decimal(str(order["shippingCost"])))


async def test_shipping_some_lines_is_told_partial_and_the_unshipped_share_refunded(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    inbox: RunningInbox,
    db: AsyncEngine,
) -> None:
    order, pi = await confirmed(shop, stripe_client, an_email("partial"))
    oid = order["orderId"]
    runner = order["lineItems"][0]
    assert (await shop.post(f"/api/ops/orders/{oid}/processing", headers=OPS)).status_code == 204
    lines = [{"lineItemId": runner["lineItemId"], "quantity": runner["quantity"]}]
    answer = await shop.post(
        f"/api/ops/orders/{oid}/ship", json={**SHIP, "lineItems": lines}, headers=OPS
    )
    assert answer.status_code == 204, answer.text
    await wait_for_status(shop, oid, "Shipped")

    got = await hooks_until(inbox, oid, [E.SHIPPED, E.REFUNDED])
    shipped = json.loads(got[E.SHIPPED]["body"])
    assert shipped["detail"]["partial"] is True
    assert shipped["detail"]["lines"] == lines
    assert shipped["detail"]["carrier"] == SHIP["carrier"]
    assert shipped["detail"]["trackingNumber"] == SHIP["trackingNumber"]
    assert shipped["data"]["status"] == "Shipped"

    unshipped = cents(order["total"]) - share(order, runner, runner["quantity"])
    at_stripe = await refunds_at_stripe(stripe_client, pi)
    assert [r.amount for r in at_stripe] == [unshipped]
    refunded = json.loads(got[E.REFUNDED]["body"])["detail"]
    assert refunded["refundId"] == at_stripe[0].id
    assert cents(refunded["amount"]) == unshipped
    assert refunded["whole"] is False
    assert refunded["purpose"] == "shipment"
    await asyncio.sleep(1.0)  # Stripe's refund events come after the shipment
    rows = await events_of(db, oid)
    assert sorted(r.type for r in rows) == sorted([E.PLACED, E.PAID, E.SHIPPED, E.REFUNDED])


async def test_a_receiver_down_for_a_while_gets_the_same_event_again_until_it_answers(
    shop: httpx.AsyncClient, inbox: RunningInbox, db: AsyncEngine
) -> None:
    inbox.set_faults(webhook={"endpoint": FLAKY, "status": 503})
    order = await place(shop, an_email("flaky"))
    oid = order["orderId"]
    placed = the_id(oid, E.PLACED)

    async def refused_twice() -> list[Item] | None:
        tries = await hooks_of(inbox, oid, FLAKY)
        return tries if len(tries) >= 2 else None

    await eventually(refused_twice, "two tries answered 503", timeout=10)
    inbox.set_faults(webhook={"endpoint": FLAKY, "status": 204})

    row = await delivery_settled(db, oid, placed, FLAKY)
    tries = await hooks_of(inbox, oid, FLAKY)
    statuses = [int(t["status"]) for t in tries]
    assert statuses[:2] == [503, 503] and statuses[-1] == 204, statuses
    assert set(statuses[2:-1]) <= {503}, statuses
    assert {t["webhookId"] for t in tries} == {placed}
    assert all(t["verified"] for t in tries)
    assert len({t["body"] for t in tries}) == 1  # the same event, byte for byte
    assert [int(t["webhookTimestamp"]) for t in tries] == sorted(
        int(t["webhookTimestamp"]) for t in tries
    )
    assert row.state == "delivered"
    assert row.attempts == len(tries) > 1
    assert row.last_status == 204


async def endpoint_state(engine: AsyncEngine, name: str) -> tuple[Any, Any] | None:
    query = select(
        WEBHOOK_ENDPOINT_STATES.c.disabled_at, WEBHOOK_ENDPOINT_STATES.c.disabled_reason
    ).where(WEBHOOK_ENDPOINT_STATES.c.name == name)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def test_a_receiver_answering_410_disables_its_endpoint_for_later_events(
    shop: httpx.AsyncClient, inbox: RunningInbox, db: AsyncEngine
) -> None:
    inbox.set_faults(webhook={"endpoint": GONE, "status": 410})
    first = await place(shop, an_email("gone"))
    placed = the_id(first["orderId"], E.PLACED)
    row = await delivery_settled(db, first["orderId"], placed, GONE)
    assert (row.state, row.attempts, row.last_status) == ("disabled", 1, 410)
    assert [int(t["status"]) for t in await hooks_of(inbox, first["orderId"], GONE)] == [410]
    state = await endpoint_state(db, GONE)
    assert state is not None and state[0] is not None, state
    assert "410" in str(state[1])

    # The receiver would take it now: only the endpoint's record keeps it off.
    inbox.set_faults(webhook={"endpoint": GONE, "status": 204})
    later = await place(shop, an_email("gone-later"))
    await hooks_until(inbox, later["orderId"], [E.PLACED])  # the other endpoint got it
    rows = [
        r
        for r in await deliveries_of(db, later["orderId"])
        if r.target == GONE and r.state in ("pending", "failing")
    ]
    if rows:  # a delivery made for it must end disabled, without a try
        await delivery_settled(db, later["orderId"], rows[0].event_id, GONE)
    for r in await deliveries_of(db, later["orderId"]):
        if r.target == GONE:
            assert r.state == "disabled", r
    await asyncio.sleep(0.5)
    assert await hooks_of(inbox, later["orderId"], GONE) == []


async def test_an_address_refused_for_good_is_recorded_and_mailed_no_more(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    inbox: RunningInbox,
    db: AsyncEngine,
) -> None:
    email = an_email("refused")
    inbox.set_faults(smtp={"refuse": email})
    order, _ = await confirmed(shop, stripe_client, email)
    oid = order["orderId"]
    paid = the_id(oid, E.PAID)
    row = await delivery_settled(db, oid, paid, "email")
    assert (row.state, row.attempts) == ("refused", 1), row
    assert "550" in (row.last_answer or ""), row
    why = await refused_address(db, oid)
    assert why is not None and "550" in why, why
    shown = (await shop.get(f"/api/ops/orders/{oid}", headers=OPS)).json()
    assert shown["customerEmailRefused"] == why  # flagged where ops read the order

    # The server would take it now: only the order's record keeps the mails from going.
    inbox.set_faults(smtp="ok")
    assert (await shop.post(f"/api/orders/{oid}/cancel")).status_code == 204
    await wait_for_status(shop, oid, "Cancelled")
    await hooks_until(inbox, oid, [E.CANCELLED, E.REFUNDED])
    later = {r.event_id for r in await events_of(db, oid) if r.type in (E.CANCELLED, E.REFUNDED)}
    assert len(later) == 2, later
    for event in later:
        mails = [r for r in await deliveries_of(db, oid) if r.event_id == event]
        if any(r.target == "email" for r in mails):
            settled = await delivery_settled(db, oid, event, "email")
            assert settled.state == "disabled", settled
    await asyncio.sleep(1.0)
    assert await mails_to(inbox, email) == []


async def the_stripe_event(client: stripe.StripeClient, pi: str) -> dict[str, Any]:
    """The emulator's own payment_intent.succeeded for this PaymentIntent."""

    async def check() -> dict[str, Any] | None:
        listed = await client.v1.events.list_async(params={"limit": 100})
        for event in listed.data:
            found = event.to_dict()
            if found["type"] == "payment_intent.succeeded" and (
                found["data"]["object"]["id"] == pi
            ):
                return dict(found)
        return None

    event: dict[str, Any] = await eventually(check, f"Stripe's success event of {pi}")
    return event


async def test_the_same_stripe_event_three_times_is_one_paid_event_and_one_receipt(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    inbox: RunningInbox,
    db: AsyncEngine,
    temporal_client: Client,
) -> None:
    email = an_email("redelivered")
    order = await place(shop, email)
    oid = order["orderId"]
    pi = await pay(shop, order)
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
    event = await the_stripe_event(stripe_client, pi)
    payload = json.dumps(event).encode()
    # As Stripe sends an event again: the same id, signed afresh; at once, beside the
    # emulator's own delivery of it.
    answers = await asyncio.gather(
        *(post_event(shop, payload, sign(payload, secret=WEBHOOK_SECRET)) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    await wait_for_status(shop, oid, "Confirmed")

    handle: WorkflowHandle[OrderWorkflow, OrderState] = temporal_client.get_workflow_handle_for(
        OrderWorkflow.run, workflow_id_for(uuid.UUID(oid))
    )

    async def seen() -> bool:
        state = await handle.query(OrderWorkflow.state)
        return event["id"] in state.seen_event_ids

    await eventually(seen, f"{event['id']} seen by the order")
    state = await handle.query(OrderWorkflow.state)
    assert state.seen_event_ids.count(event["id"]) == 1
    paid = the_id(oid, E.PAID)
    await mail_of(inbox, email, paid)
    await delivery_settled(db, oid, paid, "email")
    await asyncio.sleep(1.5)
    rows = [r for r in await events_of(db, oid) if r.type == E.PAID]
    assert [r.event_id for r in rows] == [paid]
    assert len(await mails_to(inbox, email)) == 1
    told = [d for d in await hooks_of(inbox, oid) if d["type"] == E.PAID]
    assert [d["webhookId"] for d in told] == [paid]


async def test_a_whole_lifecycle_writes_each_fact_once(
    shop: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    inbox: RunningInbox,
    db: AsyncEngine,
) -> None:
    email = an_email("lifecycle")
    order, _ = await confirmed(shop, stripe_client, email)
    oid = order["orderId"]
    for step in ("processing", "ship", "deliver"):
        body = SHIP if step == "ship" else None
        answer = await shop.post(f"/api/ops/orders/{oid}/{step}", json=body, headers=OPS)
        assert answer.status_code == 204, answer.text
    await wait_for_status(shop, oid, "Delivered")
    expected = [E.PLACED, E.PAID, E.SHIPPED, E.DELIVERED]
    got = await hooks_until(inbox, oid, expected)

    rows = await events_of(db, oid)
    assert sorted(r.type for r in rows) == sorted(expected), [r.type for r in rows]
    assert len({r.event_id for r in rows}) == len(rows)
    assert {r.event_id for r in rows} == {the_id(oid, kind) for kind in expected}
    assert {d["webhookId"] for d in got.values()} == {r.event_id for r in rows}
    shipped = next(r for r in rows if r.type == E.SHIPPED).body["detail"]
    assert shipped["partial"] is False and shipped["lines"] == []
    for row in rows:
        assert row.body["id"] == row.event_id and row.body["type"] == row.type
    answered = [d["webhookId"] for d in await hooks_of(inbox, oid) if d["status"] == 204]
    assert sorted(answered) == sorted(r.event_id for r in rows)  # each told once
    mailed = [the_id(oid, E.PAID), the_id(oid, E.SHIPPED)]
    for event in mailed:
        await delivery_settled(db, oid, event, "email")
    got_mails = [m["messageId"] for m in await mails_to(inbox, email)]
    assert [m.split("@")[0] for m in got_mails] == [f"<{e}" for e in mailed], got_mails


# ---- ops: sending events again, turning an endpoint back on ------------------------------


async def test_ops_turn_a_gone_endpoint_back_on_and_send_it_what_it_missed(
    shop: httpx.AsyncClient, inbox: RunningInbox, db: AsyncEngine
) -> None:
    inbox.set_faults(webhook={"endpoint": GONE, "status": 410})
    order = await place(shop, an_email("resend"))
    oid = order["orderId"]
    placed = the_id(oid, E.PLACED)
    row = await delivery_settled(db, oid, placed, GONE)
    assert row.state == "disabled"
    listed = (await shop.get("/api/ops/webhook-endpoints", headers=OPS)).json()
    gone = next(e for e in listed if e["name"] == GONE)
    assert gone["disabledAt"] is not None and "410" in gone["disabledReason"]

    inbox.set_faults(webhook={"endpoint": GONE, "status": 204})
    enabled = await shop.post(f"/api/ops/webhook-endpoints/{GONE}/enable", headers=OPS)
    assert enabled.status_code == 204, enabled.text
    listed = (await shop.get("/api/ops/webhook-endpoints", headers=OPS)).json()
    assert next(e for e in listed if e["name"] == GONE)["disabledAt"] is None

    # What it missed, sent again: the same event id, a new run of its delivery.
    resent = await shop.post(
        f"/api/ops/events/{placed}/redeliver", json={"target": GONE}, headers=OPS
    )
    assert resent.status_code == 202, resent.text
    assert resent.json()["started"] == [f"delivery-{placed}-{GONE}-again-2"]
    answered = await hooks_until(inbox, oid, [E.PLACED], endpoint=GONE)
    assert answered[E.PLACED]["webhookId"] == placed

    async def delivered() -> dict[str, Any] | None:
        shown = (await shop.get(f"/api/ops/events/{placed}", headers=OPS)).json()
        to_gone = next(d for d in shown["deliveries"] if d["target"] == GONE)
        return to_gone if to_gone["state"] == "delivered" else None

    settled = await eventually(delivered, "the resend delivered")
    assert settled["runs"] == 2 and settled["lastStatus"] == 204
    # The event's own page shows what every receiver got.
    body = (await shop.get(f"/api/ops/events/{placed}", headers=OPS)).json()["body"]
    assert body["id"] == placed and body["orderId"] == oid


async def test_ops_event_commands_refuse_bad_input_and_change_nothing(
    shop: httpx.AsyncClient, db: AsyncEngine
) -> None:
    order = await place(shop, an_email("bad-ops"))
    placed = the_id(order["orderId"], E.PLACED)
    await eventually(lambda: _has_event(db, order["orderId"], placed), "order.placed written")
    for target in (SHOP, FLAKY, GONE, TAP):  # each settled: nothing moves but what we send
        await delivery_settled(db, order["orderId"], placed, target)
    before = await deliveries_of(db, order["orderId"])
    refusals = [
        (f"/api/ops/events/{placed}/redeliver", {"target": "no-such-endpoint"}, 400),
        ("/api/ops/events/evt_0000/redeliver", {}, 404),
        (
            "/api/ops/events/redeliver",
            {"since": "2026-12-08T00:00:00Z", "until": "2026-12-07T00:00:00Z"},
            400,
        ),
        (
            "/api/ops/events/redeliver",
            {"since": "2026-12-07T00:00:00", "until": "2026-12-08T00:00:00Z"},
            400,
        ),
        (
            "/api/ops/events/redeliver",
            {"since": "2026-12-07T00:00:00Z", "until": "2026-12-08T00:00:00Z", "state": "x"},
            400,
        ),
        ("/api/ops/webhook-endpoints/no-such-endpoint/enable", None, 404),
    ]
    for path, body, status in refusals:
        answer = await shop.post(path, json=body, headers=OPS)
        assert answer.status_code == status, (path, answer.text)
        assert answer.json().get("error"), answer.text
    listed = await shop.get("/api/ops/events", params={"state": "nonsense"}, headers=OPS)
    assert listed.status_code == 400
    assert (await shop.get("/api/ops/events", headers={})).status_code == 401
    await asyncio.sleep(1)
    assert await deliveries_of(db, order["orderId"]) == before  # nothing was sent again


async def _has_event(db: AsyncEngine, order_id: str, event: str) -> bool | None:
    return any(e.event_id == event for e in await events_of(db, order_id)) or None
