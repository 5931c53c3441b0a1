"""GET /api/orders/{id}/status-change: a checkout page waits for its payment's outcome in one
request, woken by PostgreSQL's notification of the activity's committed change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api import read_model
from api.order_changes import OrderChanges
from tests.support.integration import GOOD_CARD, order_body, pay_with_card, serve
from vult.db import changes
from vult.process.settings import Settings


async def paying_order(http: httpx.AsyncClient) -> tuple[str, str]:
    order = (await http.post("/api/orders", json=order_body())).json()
    intent = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    return order["orderId"], intent["paymentIntentId"]


async def wait_for_change(
    http: httpx.AsyncClient, order_id: str, from_status: str, timeout: float
) -> httpx.Response:
    return await http.get(
        f"/api/orders/{order_id}/status-change",
        params={"from": from_status, "timeout": timeout},
    )


@pytest.fixture
async def listener(settings: Settings) -> AsyncIterator[OrderChanges]:
    """An API process's listener of its own, already listening."""
    changes_listener = OrderChanges(settings.database_url)
    await changes_listener.start()
    try:
        await asyncio.wait_for(changes_listener.listening.wait(), 10)
        yield changes_listener
    finally:
        await changes_listener.stop()


async def test_a_waiting_checkout_page_is_answered_when_the_payment_confirms(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    order_id, pi = await paying_order(http)
    waiting = asyncio.create_task(wait_for_change(http, order_id, "PaymentProcessing", 25))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
    answer = await asyncio.wait_for(waiting, 30)
    assert answer.status_code == 200
    assert answer.json()["status"] == "Confirmed"


async def test_an_order_already_past_the_status_is_answered_at_once(
    http: httpx.AsyncClient,
) -> None:
    order_id, _ = await paying_order(http)
    answer = await wait_for_change(http, order_id, "Pending", 25)
    assert answer.status_code == 200
    assert answer.json()["status"] == "PaymentProcessing"


async def test_without_a_change_the_wait_ends_with_the_order_as_it_is(
    http: httpx.AsyncClient,
) -> None:
    order_id, _ = await paying_order(http)
    answer = await wait_for_change(http, order_id, "PaymentProcessing", 0.5)
    assert answer.status_code == 200
    assert answer.json()["status"] == "PaymentProcessing"


async def test_an_idle_wait_reads_its_row_only_when_it_starts_and_ends(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the listener listens, an open checkout page costs the database one read when
    it starts waiting and one when its wait ends, not one every few seconds (issue 32:
    500 idle pages slowed everything else)."""
    order_id, _ = await paying_order(http)
    reads: list[uuid.UUID] = []
    original = read_model.get_order

    async def counted(connection: Any, wanted: uuid.UUID) -> Any:
        reads.append(wanted)
        return await original(connection, wanted)

    monkeypatch.setattr(read_model, "get_order", counted)
    answer = await wait_for_change(http, order_id, "PaymentProcessing", 5)
    assert answer.status_code == 200 and answer.json()["status"] == "PaymentProcessing"
    assert reads.count(uuid.UUID(order_id)) == 2, reads


async def test_bad_wait_requests_are_refused(http: httpx.AsyncClient) -> None:
    order_id, _ = await paying_order(http)
    url = f"/api/orders/{order_id}/status-change"
    assert (await http.get(url, params={"from": "Paid"})).status_code == 400
    assert (await http.get(url, params={"from": "Pending", "timeout": 31})).status_code == 400
    assert (await http.get(url, params={"from": "Pending", "timeout": 0})).status_code == 400
    assert (await http.get(url)).status_code == 400
    missing = f"/api/orders/{uuid.uuid4()}/status-change"
    assert (await http.get(missing, params={"from": "Pending"})).status_code == 404


async def test_the_listener_hears_committed_changes_only(
    listener: OrderChanges, engine: AsyncEngine
) -> None:
    order_id = uuid.uuid4()
    with listener.watching(order_id) as watch:
        async with engine.connect() as conn:
            await changes.announce(conn, order_id)
            await conn.rollback()
        assert not await watch.changed(within=0.5)
        async with engine.begin() as conn:
            await changes.announce(conn, order_id)
        assert await watch.changed(within=10)


async def test_the_listener_listens_again_after_losing_its_connection(
    listener: OrderChanges, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:  # as a database restart would
        killed = await conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            )
        )
    assert killed >= 1
    for _ in range(100):  # bounded: 10 s
        if not listener.listening.is_set():
            break
        await asyncio.sleep(0.1)
    await asyncio.wait_for(listener.listening.wait(), 10)
    order_id = uuid.uuid4()
    with listener.watching(order_id) as watch:
        async with engine.begin() as conn:
            await changes.announce(conn, order_id)
        assert await watch.changed(within=10)


async def test_one_client_past_its_bound_of_waits_is_refused_and_others_still_wait(
    http: httpx.AsyncClient, settings: Settings, stripe_client: stripe.StripeClient
) -> None:
    """API_MAX_WAITS_PER_CLIENT, per client as uvicorn resolves it (here through
    X-Forwarded-For from 127.0.0.1, the default trusted proxy): a third open wait of one
    client is refused at once with 429, another client's is not, and the first client's
    places free up once its waits answer."""
    bounded = settings.model_copy(update={"api_max_waits_per_client": 2, "api_metrics_address": ""})
    order_id, pi = await paying_order(http)
    one, other = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "198.51.100.8"}
    url = f"/api/orders/{order_id}/status-change"
    waiting_for = {"from": "PaymentProcessing", "timeout": "20"}
    with serve(bounded) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as api:
            held = [
                asyncio.create_task(api.get(url, params=waiting_for, headers=one)) for _ in "ab"
            ]
            await asyncio.sleep(0.5)
            assert not any(h.done() for h in held)
            loop = asyncio.get_running_loop()
            began = loop.time()
            refused = await api.get(url, params=waiting_for, headers=one)
            assert loop.time() - began < 1.0
            assert refused.status_code == 429, refused.text
            assert refused.headers["Retry-After"] and refused.json()["outcomeKnown"] is True
            others = asyncio.create_task(api.get(url, params=waiting_for, headers=other))
            await asyncio.sleep(0.3)
            assert not others.done()  # waiting, not refused
            assert await pay_with_card(stripe_client, pi, GOOD_CARD) == "succeeded"
            answers = await asyncio.wait_for(asyncio.gather(*held, others), 30)
            assert [a.json()["status"] for a in answers] == ["Confirmed"] * 3
            again = await api.get(url, params=waiting_for, headers=one)
            assert again.status_code == 200 and again.json()["status"] == "Confirmed"
