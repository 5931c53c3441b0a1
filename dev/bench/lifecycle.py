"""One order's whole life over HTTP, as the shop's frontend and Stripe.js would drive it:
create -> ask to pay -> confirm the card at the Stripe emulator -> the signed webhook
arrives -> the order reads back Confirmed. Plus the read phase."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from dev.bench.measure import Latencies
from dev.chaos.shoppers import shopper_address

ORDER = {
    "customerEmail": "bench@example.com",
    "shippingAddress": {
        "fullName": "Bench Customer",
        "addressLine1": "1 Load St",
        "city": "Springfield",
        "state": "IL",
        "postalCode": "62701",
        "country": "US",
    },
    "lineItems": [
        {"productId": "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001", "quantity": 1},
        {"productId": "6f1c2a3e-0005-4c1b-9a55-1d2f8e9a0005", "quantity": 2, "size": "L"},
    ],
}
CARD = {
    "type": "card",
    "card[number]": "4242424242424242",
    "card[exp_month]": "12",
    "card[exp_year]": "2034",
    "card[cvc]": "123",
}
_clients = itertools.count()
# The latency of a whole lifecycle, in every phase's report.
LIFECYCLE = "lifecycle (create -> Confirmed)"
WAIT_SECONDS = 25
CONFIRM_TIMEOUT = 60.0
# How many times one call is sent again after the API shed it, at most.
MAX_SHED_TRIES = 60


@dataclass
class Target:
    api: str
    stripe: str
    stripe_key: str


class Failed(Exception):
    pass


class NotAdmitted(Failed):
    """Refused until the caller's deadline: it gave up politely (nothing was started)."""


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    expect: int,
    lat: Latencies | None = None,
    name: str = "",
    *,
    client: str | None = None,
    admit_by: float | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """One HTTP call, timed from sending the request to reading the whole answer. A refusal
    the API says nothing was started for (503 or 429, `outcomeKnown: true`, Retry-After) is
    sent again after the wait it names, as a polite client does; the time is the admitted
    try's, and each refusal's own time is kept under "<name> refused". `client`: the
    shopper's address, as a proxy in front names it (X-Forwarded-For). `admit_by`: past this
    `perf_counter()` time the caller stops asking (NotAdmitted)."""
    if client is not None:
        kwargs["headers"] = {**kwargs.get("headers", {}), "X-Forwarded-For": client}
    for _ in range(MAX_SHED_TRIES):
        start = time.perf_counter()
        try:
            async with http.request(method, url, **kwargs) as response:
                if response.status in (429, 503) and "Retry-After" in response.headers:
                    refusal = await response.json()
                    if refusal.get("outcomeKnown") is True:
                        # As told (the API says at most 30 s), bounded all the same.
                        wait = min(float(response.headers["Retry-After"]), 60.0)
                        if lat is not None:
                            lat.shed[f"{name} ({response.status})"] += 1
                            lat.add(f"{name} refused", time.perf_counter() - start)
                        if admit_by is not None and time.perf_counter() + wait > admit_by:
                            raise NotAdmitted(f"{method} {url}: refused until the deadline")
                        await asyncio.sleep(wait)
                        continue
                if response.status != expect:
                    raise Failed(f"{method} {response.url.path}: {response.status}")
                body: dict[str, Any] = await response.json()
        except NotAdmitted:
            raise
        except Exception:
            if lat is not None:
                lat.fail(name)
            raise
        if lat is not None:
            lat.add(name, time.perf_counter() - start)
        return body
    if lat is not None:
        lat.fail(name)
    raise Failed(f"{method} {url}: refused {MAX_SHED_TRIES} times")


async def create_order(
    http: aiohttp.ClientSession,
    target: Target,
    lat: Latencies,
    *,
    client: str | None = None,
    email: str | None = None,
    key: str | None = None,
    admit_by: float | None = None,
) -> str:
    url = f"{target.api}/api/orders"
    # A key of its own, so a create sent again after a refusal is the same order.
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    body = await _call(
        http,
        "POST",
        url,
        201,
        lat,
        "POST /api/orders",
        client=client,
        admit_by=admit_by,
        json=ORDER if email is None else {**ORDER, "customerEmail": email},
        headers=headers,
    )
    return str(body["orderId"])


async def pay_and_confirm(
    http: aiohttp.ClientSession,
    target: Target,
    lat: Latencies,
    order_id: str,
    *,
    client: str | None = None,
) -> None:
    """Ask to pay, confirm the card at the emulator as Stripe.js does, and wait (without
    polling) until the order reads back Confirmed."""
    order_url = f"{target.api}/api/orders/{order_id}"
    intent = await _call(
        http,
        "POST",
        f"{order_url}/payment",
        200,
        lat,
        "POST /api/orders/{id}/payment",
        client=client,
    )
    pi = intent["paymentIntentId"]
    stripe = {"Authorization": f"Bearer {target.stripe_key}"}
    confirm_start = time.perf_counter()
    method = await _call(
        http, "POST", f"{target.stripe}/v1/payment_methods", 200, data=CARD, headers=stripe
    )
    await _call(
        http,
        "POST",
        f"{target.stripe}/v1/payment_intents/{pi}",
        200,
        data={"payment_method": method["id"]},
        headers=stripe,
    )
    confirmed = await _call(
        http, "POST", f"{target.stripe}/v1/payment_intents/{pi}/confirm", 200, headers=stripe
    )
    if confirmed["status"] != "succeeded":
        raise Failed(f"card not accepted: {confirmed['status']}")
    paid_at = time.perf_counter()
    lat.add("card confirmed at the emulator", paid_at - confirm_start)
    deadline = paid_at + CONFIRM_TIMEOUT
    # As the shop's checkout page does: one request that answers when the order is no
    # longer PaymentProcessing (the webhook has been applied), instead of polling.
    for _ in range(int(CONFIRM_TIMEOUT)):  # bounded: each wait takes up to WAIT_SECONDS
        order = await _call(
            http,
            "GET",
            f"{order_url}/status-change",
            200,
            lat,
            "GET /api/orders/{id}/status-change",
            client=client,
            params={"from": "PaymentProcessing", "timeout": str(WAIT_SECONDS)},
        )
        if order["status"] == "Confirmed":
            break
        if order["status"] != "PaymentProcessing" or time.perf_counter() > deadline:
            lat.fail("lifecycle")
            raise Failed(f"order {order_id} is {order['status']}, not Confirmed")
    else:
        raise Failed(f"order {order_id} never left PaymentProcessing")
    lat.add("paid -> reads Confirmed", time.perf_counter() - paid_at)


def next_client() -> str:
    """A shopper's address of its own (per-client bounds count each shopper apart)."""
    return shopper_address(next(_clients))


async def lifecycle(http: aiohttp.ClientSession, target: Target, lat: Latencies) -> str:
    began = time.perf_counter()
    client = next_client()
    order_id = await create_order(http, target, lat, client=client)
    await pay_and_confirm(http, target, lat, order_id, client=client)
    lat.add(LIFECYCLE, time.perf_counter() - began)
    return order_id


async def run_many(
    count: int, concurrency: int, one: object, progress: str
) -> tuple[list[str], float, int]:
    """Run `one()` count times, `concurrency` at a time; returns ids, seconds, errors."""
    ids: list[str] = []
    errors = 0
    counter = itertools.count()
    done = 0
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal errors, done
        while next(counter) < count:
            try:
                ids.append(await one())  # type: ignore[operator]
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors += 1
                if errors <= 3:
                    print(f"    error: {type(exc).__name__}: {exc}", flush=True)
            done += 1

    async def report() -> None:
        while True:
            await asyncio.sleep(5)
            rate = done / (time.perf_counter() - started)
            print(f"    {progress}: {done}/{count} ({rate:.1f}/s)", flush=True)

    reporter = asyncio.create_task(report())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    reporter.cancel()
    return ids, time.perf_counter() - started, errors


async def read_for(
    http: aiohttp.ClientSession,
    url_of: object,
    ids: list[str],
    seconds: float,
    concurrency: int,
    lat: Latencies,
    name: str,
) -> tuple[int, float]:
    """GET orders round-robin for `seconds` at fixed concurrency; returns count, seconds."""
    ring = itertools.cycle(ids)
    stop = time.perf_counter() + seconds
    count = 0
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            url = url_of(next(ring))  # type: ignore[operator]
            t0 = time.perf_counter()
            async with http.get(url) as response:
                await response.read()
                if response.status != 200:
                    lat.fail(name)
                    continue
            lat.add(name, time.perf_counter() - t0)
            count += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count, time.perf_counter() - started
