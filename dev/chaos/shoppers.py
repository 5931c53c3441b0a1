"""Customers and ops staff, as the shop's frontend drives the API: each journey takes one
order down one path, retrying what failed the way a frontend does (the same Idempotency-Key
for a create; any API process; backing off while the system is down), within a budget.

A journey records every order id a 201 named, any 5xx other than 503 (a server error is a
defect even under chaos), and, when it got to its end, the status its path must end in."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then the charge is declined
THREE_D_SECURE_CARD = "4000002760003184"  # needs authentication (the emulator's 3-D Secure)
DISPUTED_CARD = "4000000000000259"  # succeeds, then a dispute opens (Stripe's test mode)
PUBLISHABLE_KEY = "pk_test_chaos"  # the emulator takes any publishable key
# How long one step may keep retrying: longer than the longest outage the suite causes.
STEP_BUDGET = 240.0
# How long a journey waits for its order to reach a status (webhooks may be lost: then
# reconciliation, seconds apart here, finds the payment).
WAIT_BUDGET = 300.0
# Unavailable for now, or (429) this shopper's earlier requests are still open: the
# answers a frontend sends again.
_RETRY_STATUSES = {429, 502, 503, 504}

PATHS = (
    "pay",
    "pay-and-deliver",
    "double-click-pay",
    "decline-then-retry",
    "cancel-before-paying",
    "cancel-after-paying",
    "cancel-while-paying",
    "cancel-racing-confirmation",
    # The account is shared, and money moves outside the service:
    "dashboard-partial-refund-then-cancel",
    "dashboard-full-refund",
    "disputed",
    "three-d-secure",
    "other-systems-payments",
    # Shoes come back: ship part, return part, in both capture modes.
    "ship-part-return-part",
    "ship-part-return-part-at-shipment",
    "pay-at-shipment-and-cancel",
)
# Paths whose order is placed through the API that captures at shipment (the second);
# paths that move money in the Dashboard or dispute it need a captured payment: the first.
AT_SHIPMENT = frozenset({"ship-part-return-part-at-shipment", "pay-at-shipment-and-cancel"})
AUTOMATIC = frozenset(
    {
        "dashboard-partial-refund-then-cancel",
        "dashboard-full-refund",
        "disputed",
        "ship-part-return-part",
    }
)
# Where each path must end once it has run to its end.
EXPECTED = {
    "pay": "Confirmed",
    "pay-and-deliver": "Delivered",
    "double-click-pay": "Confirmed",
    "decline-then-retry": "Confirmed",
    "cancel-before-paying": "Cancelled",
    "cancel-after-paying": "Cancelled",
    "cancel-while-paying": "Cancelled",
    "cancel-racing-confirmation": "Cancelled",
    "dashboard-partial-refund-then-cancel": "Cancelled",
    "dashboard-full-refund": "Cancelled",
    "disputed": "Cancelled",
    "three-d-secure": "Confirmed",
    # Its own order is cancelled; their PaymentIntents must be left alone (the audit).
    "other-systems-payments": "Cancelled",
    "ship-part-return-part": "Delivered",
    "ship-part-return-part-at-shipment": "Delivered",
    "pay-at-shipment-and-cancel": "Cancelled",
}
# A PaymentIntent's status once the customer's card went through: captured, or (capture
# at shipment) authorized.
PAID = frozenset({"succeeded", "requires_capture"})


class GaveUp(Exception):
    """The system did not answer within the budget: the journey stops there."""


@dataclass
class Journey:
    number: int
    path: str
    key: str
    email: str
    order_ids: set[str] = field(default_factory=set)  # every order id a 201 named
    last_status: str | None = None
    seen: set[str] = field(default_factory=set)  # every status the API showed the order in
    finished: bool = False
    gave_up: str | None = None
    server_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the customer saw go wrong
    # Other systems' PaymentIntents on the account -> the status each was left in.
    foreign: dict[str, str] = field(default_factory=dict)

    @property
    def order_id(self) -> str | None:
        return next(iter(self.order_ids)) if len(self.order_ids) == 1 else None

    @property
    def expected(self) -> str:
        return EXPECTED[self.path]


@dataclass
class Shop:
    """What every journey shares: the API processes, the emulator, the ops token."""

    apis: list[str]
    stripe_base: str
    stripe_key: str
    ops_token: str
    rng: random.Random
    http: httpx.AsyncClient
    stripe: stripe.StripeClient


def order_body(email: str, rng: random.Random) -> dict[str, Any]:
    items = [
        {"productId": "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001", "quantity": rng.randint(1, 3)},
        {"productId": "6f1c2a3e-0005-4c1b-9a55-1d2f8e9a0005", "quantity": 1, "size": "L"},
    ]
    return {
        "customerEmail": email,
        "shippingAddress": {
            "fullName": "Chaos Customer",
            "addressLine1": "1 Fault Line",
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62701",
            "country": "US",
        },
        "lineItems": items[: rng.randint(1, 2)],
    }


def shopper_address(number: int) -> str:
    """A shopper's own address in 198.18.0.0/15 (set aside for benchmarks), as
    X-Forwarded-For names it to the API: per-client bounds count each shopper apart. The
    first 65,536 numbers are 198.18.x.x, the next 198.19.x.x; past 131,071 they repeat."""
    n = number % (1 << 17)
    return f"198.{18 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


class Trip:
    """One journey's calls."""

    def __init__(self, shop: Shop, journey: Journey) -> None:
        self.shop = shop
        self.j = journey

    async def call(
        self, method: str, path: str, *, ops: bool = False, api: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The answer to the first attempt that was not 'unavailable' (from `api`, or any)."""
        deadline = time.monotonic() + STEP_BUDGET
        pause = 0.2
        headers = kwargs.pop("headers", {})
        if ops:
            headers["Authorization"] = f"Bearer {self.shop.ops_token}"
        else:  # each shopper is a client of its own, as a proxy in front names it
            headers["X-Forwarded-For"] = shopper_address(self.j.number)
        pinned = api
        while True:
            api = pinned or self.shop.rng.choice(self.shop.apis)
            try:
                response = await self.shop.http.request(
                    method, f"{api}{path}", headers=headers, **kwargs
                )
                # 429: its own earlier requests are still open; sent again below.
                if response.status_code < 500 and response.status_code != 429:
                    return response
                if response.status_code not in _RETRY_STATUSES:
                    self.j.server_errors.append(
                        f"{method} {path}: {response.status_code} {response.text[:200]}"
                    )
            except httpx.TransportError:
                pass  # that API process is down, or the connection was cut
            if time.monotonic() > deadline:
                raise GaveUp(f"{method} {path} unanswered for {STEP_BUDGET:.0f}s")
            await asyncio.sleep(pause * (0.5 + self.shop.rng.random()))
            pause = min(pause * 2, 3.0)

    def placing_api(self) -> str | None:
        """The API whose capture mode the path needs (the first: automatic, the second:
        at shipment); None: any, so both modes meet every other path."""
        apis = self.shop.apis
        if self.j.path in AT_SHIPMENT and len(apis) > 1:
            return apis[1]
        return apis[0] if self.j.path in AUTOMATIC else None

    async def create(self, body: dict[str, Any] | None = None) -> str:
        body = body or order_body(self.j.email, self.shop.rng)
        api = self.placing_api()
        response = await self.call(
            "POST", "/api/orders", json=body, headers={"Idempotency-Key": self.j.key}, api=api
        )
        if response.status_code != 201:
            raise GaveUp(f"create answered {response.status_code}: {response.text[:200]}")
        order_id = str(response.json()["orderId"])
        self.j.order_ids.add(order_id)
        # A frontend that lost the first answer sends the same request again: same order.
        if self.shop.rng.random() < 0.2:
            again = await self.call(
                "POST", "/api/orders", json=body, headers={"Idempotency-Key": self.j.key}, api=api
            )
            if again.status_code == 201:
                self.j.order_ids.add(str(again.json()["orderId"]))
            else:
                self.j.problems.append(f"create sent again answered {again.status_code}")
        return order_id

    async def status(self, order_id: str) -> str:
        response = await self.call("GET", f"/api/orders/{order_id}")
        if response.status_code != 200:
            raise GaveUp(f"GET order answered {response.status_code}")
        self.j.last_status = str(response.json()["status"])
        self.j.seen.add(self.j.last_status)
        return self.j.last_status

    async def wait_for(self, order_id: str, wanted: set[str]) -> str:
        """Long-poll the status-change route until the order is in `wanted`."""
        deadline = time.monotonic() + WAIT_BUDGET
        current = await self.status(order_id)
        while current not in wanted:
            if time.monotonic() > deadline:
                raise GaveUp(f"order stayed {current}, waiting for {sorted(wanted)}")
            response = await self.call(
                "GET",
                f"/api/orders/{order_id}/status-change",
                params={"from": current, "timeout": "10"},
            )
            if response.status_code == 200:
                current = self.j.last_status = str(response.json()["status"])
                self.j.seen.add(current)
        return current

    async def payment(self, order_id: str) -> str:
        response = await self.call("POST", f"/api/orders/{order_id}/payment")
        if response.status_code != 200:
            raise GaveUp(f"payment answered {response.status_code}: {response.text[:200]}")
        return str(response.json()["paymentIntentId"])

    async def cancel(self, order_id: str) -> None:
        response = await self.call(
            "POST", f"/api/orders/{order_id}/cancel", timeout=httpx.Timeout(60)
        )
        # A retry of a cancel that went through is refused: the order says which it was.
        if response.status_code != 204 and await self.status(order_id) != "Cancelled":
            raise GaveUp(f"cancel answered {response.status_code}: {response.text[:200]}")

    async def ops(self, order_id: str, command: str, wanted: str, **kwargs: Any) -> None:
        response = await self.call(
            "POST", f"/api/ops/orders/{order_id}/{command}", ops=True, **kwargs
        )
        if response.status_code != 204 and await self.status(order_id) != wanted:
            raise GaveUp(f"{command} answered {response.status_code}: {response.text[:200]}")

    async def stripe_call(self, what: str, call: Any) -> Any:
        """A call to the emulator as the Dashboard or another system makes it: retried
        while the emulator is down."""
        deadline = time.monotonic() + STEP_BUDGET
        while True:
            try:
                return await call()
            except (stripe.APIConnectionError, httpx.TransportError):
                if time.monotonic() > deadline:
                    raise GaveUp(f"the Stripe emulator stayed down ({what})") from None
                await asyncio.sleep(0.5 + self.shop.rng.random())

    async def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The emulator's test controls: a bank, a cardholder (dev/stack/stripe_money.py)."""

        async def post() -> dict[str, Any]:
            if path == "/_vult/authenticate":
                body_with_key = {**body, "key": PUBLISHABLE_KEY}
                response = await self.shop.http.post(
                    f"{self.shop.stripe_base}{path}", content=json.dumps(body_with_key)
                )
            else:
                response = await self.shop.http.post(
                    f"{self.shop.stripe_base}{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {self.shop.stripe_key}"},
                )
            if response.status_code >= 500:
                raise httpx.TransportError(f"{path}: {response.status_code}")
            return dict(response.json())

        return dict(await self.stripe_call(path, post))

    async def payment_status(self, order_id: str, wanted: set[str]) -> str:
        """Poll the order until its paymentStatus is one of `wanted` (webhooks may be lost:
        fulfilment and cancel read Stripe back anyway, so this gives up quietly)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = await self.call("GET", f"/api/orders/{order_id}")
            if "status" in response.json():
                self.j.seen.add(str(response.json()["status"]))
            found = str(response.json().get("paymentStatus"))
            if found in wanted:
                return found
            await asyncio.sleep(0.5)
        return ""

    async def card(self, payment_intent_id: str, number: str) -> str:
        """What Stripe.js does: attach a card and confirm. Returns the PaymentIntent's
        status, or "declined"; retries while the emulator is down."""
        deadline = time.monotonic() + STEP_BUDGET
        client = self.shop.stripe.v1
        while True:
            try:
                method = await client.payment_methods.create_async(
                    params={
                        "type": "card",
                        "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
                    }
                )
                try:
                    await client.payment_intents.update_async(
                        payment_intent_id, params={"payment_method": method.id}
                    )
                    return (await client.payment_intents.confirm_async(payment_intent_id)).status
                except stripe.CardError:
                    return "declined"
                except stripe.InvalidRequestError:
                    # Already paid (a lost answer), or cancelled meanwhile: ask what it is.
                    found = await client.payment_intents.retrieve_async(payment_intent_id)
                    return str(found.status)
            except stripe.APIConnectionError:
                if time.monotonic() > deadline:
                    raise GaveUp("the Stripe emulator stayed down") from None
                await asyncio.sleep(0.5 + self.shop.rng.random())


async def _paid(trip: Trip, order_id: str) -> None:
    """Ask to pay, pay with a good card, wait until the order is Confirmed."""
    pi = await trip.payment(order_id)
    paid = await trip.card(pi, GOOD_CARD)
    if paid not in PAID:
        raise GaveUp(f"the good card left the PaymentIntent {paid}")
    await trip.wait_for(order_id, {"Confirmed"})


async def run_path(trip: Trip) -> None:
    path, rng = trip.j.path, trip.shop.rng
    if path == "other-systems-payments":
        await other_systems(trip)
        return
    if path.startswith("ship-part-return-part"):
        await ship_part_return_part(trip)
        return
    order_id = await trip.create()
    if path == "pay":
        await _paid(trip, order_id)
    elif path == "pay-and-deliver":
        await _paid(trip, order_id)
        await trip.ops(order_id, "processing", "Processing")
        ship = {"carrier": "UPS", "trackingNumber": f"1Z{trip.j.number:08d}"}
        await trip.ops(order_id, "ship", "Shipped", json=ship)
        await trip.ops(order_id, "deliver", "Delivered")
    elif path == "double-click-pay":
        first, second = await asyncio.gather(trip.payment(order_id), trip.payment(order_id))
        if first != second:
            trip.j.problems.append(f"two clicks on pay made two PaymentIntents {first} {second}")
        if await trip.card(first, GOOD_CARD) not in PAID:
            raise GaveUp("the good card was not taken")
        await trip.wait_for(order_id, {"Confirmed"})
    elif path == "decline-then-retry":
        pi = await trip.payment(order_id)
        if await trip.card(pi, DECLINED_CARD) != "declined":
            trip.j.problems.append("the declining card was taken")
        await trip.wait_for(order_id, {"Failed", "Confirmed"})
        await _paid(trip, order_id)
    elif path == "cancel-before-paying":
        await trip.cancel(order_id)
    elif path == "cancel-after-paying":
        await _paid(trip, order_id)
        await trip.cancel(order_id)
    elif path == "cancel-while-paying":
        pi = await trip.payment(order_id)
        await trip.cancel(order_id)
        # The checkout tab was still open: its card must not be taken for good.
        await trip.card(pi, GOOD_CARD)
    elif path == "cancel-racing-confirmation":
        pi = await trip.payment(order_id)

        async def cancel_soon() -> None:
            await asyncio.sleep(rng.random() * 0.3)
            await trip.cancel(order_id)

        await asyncio.gather(trip.card(pi, GOOD_CARD), cancel_soon())
    elif path == "dashboard-partial-refund-then-cancel":
        pi = await _paid_with(trip, order_id)
        amount = await _amount(trip, pi)
        part = rng.randint(1, amount - 1)
        await trip.stripe_call(
            "refund",
            lambda: trip.shop.stripe.v1.refunds.create_async(
                params={"payment_intent": pi, "amount": part}
            ),
        )
        await trip.payment_status(order_id, {"partially_refunded"})
        await trip.cancel(order_id)
    elif path == "dashboard-full-refund":
        pi = await _paid_with(trip, order_id)
        await trip.stripe_call(
            "refund",
            lambda: trip.shop.stripe.v1.refunds.create_async(params={"payment_intent": pi}),
        )
        await _refused_fulfilment(trip, order_id)
        await trip.cancel(order_id)
    elif path == "disputed":
        pi = await _paid_with(trip, order_id, DISPUTED_CARD)
        dispute = await _dispute_of(trip, pi)
        await trip.payment_status(order_id, {"disputed"})
        await _refused_fulfilment(trip, order_id)
        outcome = rng.choice(("won", "lost"))
        await trip.control(f"/_vult/disputes/{dispute}/close", {"outcome": outcome})
        await trip.payment_status(order_id, {"succeeded" if outcome == "won" else "dispute_lost"})
        await trip.cancel(order_id)
    elif path == "three-d-secure":
        pi = await trip.payment(order_id)
        if await trip.card(pi, THREE_D_SECURE_CARD) != "requires_action":
            trip.j.problems.append("the 3-D Secure card asked for no authentication")
        intent = await trip.stripe_call(
            "read", lambda: trip.shop.stripe.v1.payment_intents.retrieve_async(pi)
        )
        success = rng.random() < 0.7
        await trip.control(
            "/_vult/authenticate", {"client_secret": intent.client_secret, "success": success}
        )
        if not success:  # the customer pays with another card
            await trip.wait_for(order_id, {"Failed"})
            await _paid(trip, order_id)
    elif path == "pay-at-shipment-and-cancel":
        await _paid(trip, order_id)
        await trip.cancel(order_id)  # the authorization is released: no refund
    else:
        raise ValueError(path)
    await trip.wait_for(order_id, {trip.j.expected})


async def ship_part_return_part(trip: Trip) -> None:
    """Two lines paid; one shipped (its share captured, or the other's refunded), then
    delivered, and one of the shipped shoes returned: the request sent twice, refunded
    once."""
    body = order_body(trip.j.email, trip.shop.rng)
    body["lineItems"] = [
        {"productId": "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001", "quantity": 2},
        {"productId": "6f1c2a3e-0005-4c1b-9a55-1d2f8e9a0005", "quantity": 1, "size": "L"},
    ]
    order_id = await trip.create(body)
    await _paid(trip, order_id)
    shown = (await trip.call("GET", f"/api/orders/{order_id}")).json()
    runner = shown["lineItems"][0]["lineItemId"]
    await trip.ops(order_id, "processing", "Processing")
    ship = {
        "carrier": "UPS",
        "trackingNumber": f"1Z{trip.j.number:08d}",
        "lineItems": [{"lineItemId": runner, "quantity": 2}],
    }
    await trip.ops(order_id, "ship", "Shipped", json=ship)
    await trip.ops(order_id, "deliver", "Delivered")
    back = {"reason": "Too small", "lineItems": [{"lineItemId": runner, "quantity": 1}]}
    key = {"Idempotency-Key": f"{trip.j.key}-return"}
    answers = set()
    for _ in range(2):  # the ops console sends it again: one refund
        response = await trip.call(
            "POST", f"/api/ops/orders/{order_id}/returns", ops=True, json=back, headers=dict(key)
        )
        if response.status_code != 200:
            raise GaveUp(f"return answered {response.status_code}: {response.text[:200]}")
        answers.add(response.text)
    if len(answers) != 1:
        trip.j.problems.append(f"a return sent twice answered differently: {answers}")


async def _paid_with(trip: Trip, order_id: str, number: str = GOOD_CARD) -> str:
    pi = await trip.payment(order_id)
    paid = await trip.card(pi, number)
    if paid not in PAID:
        raise GaveUp(f"the card left the PaymentIntent {paid}")
    await trip.wait_for(order_id, {"Confirmed"})
    return pi


async def _amount(trip: Trip, pi: str) -> int:
    found = await trip.stripe_call(
        "read", lambda: trip.shop.stripe.v1.payment_intents.retrieve_async(pi)
    )
    return int(found.amount)


async def _dispute_of(trip: Trip, pi: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = await trip.stripe_call(
            "disputes",
            lambda: trip.shop.stripe.v1.disputes.list_async(params={"payment_intent": pi}),
        )
        if listed.data:
            return str(listed.data[0].id)
        await asyncio.sleep(0.5)
    raise GaveUp(f"no dispute opened for {pi}")


async def _refused_fulfilment(trip: Trip, order_id: str) -> None:
    """Ops try to fulfil an order whose money went back or is disputed: refused, always
    (fulfilment reads Stripe back first, whatever webhooks were lost)."""
    response = await trip.call("POST", f"/api/ops/orders/{order_id}/processing", ops=True)
    if response.status_code != 400:
        trip.j.problems.append(
            f"fulfilment of an unpaid or disputed order answered {response.status_code}"
        )


async def other_systems(trip: Trip) -> None:
    """Another system's payments on the shared account: the old Vult (an `order_id` that
    is not ours), a payment link (no metadata), staging (our marker, another owner, naming
    a real order), one paid and one left payable each."""
    client = trip.shop.stripe.v1
    real_order = await trip.create()
    kinds = [
        {"order_id": str(uuid.UUID(int=trip.shop.rng.getrandbits(128))), "order_number": "OLD-1"},
        {},
        {"order_id": real_order, "vult_owner": "vult-staging"},
    ]
    for metadata in kinds:
        for pay in (True, False):
            intent = await trip.stripe_call(
                "create",
                lambda m=metadata: client.payment_intents.create_async(
                    params={
                        "amount": 1000 + trip.shop.rng.randint(0, 9000),
                        "currency": "usd",
                        "allowed_payment_method_types": ["card"],
                        "metadata": m,
                    }
                ),
            )
            status = await trip.card(intent.id, GOOD_CARD if pay else DECLINED_CARD)
            trip.j.foreign[intent.id] = (
                "succeeded" if status == "succeeded" else ("requires_payment_method")
            )
    await trip.cancel(real_order)
    await trip.wait_for(real_order, {"Cancelled"})


async def journey(shop: Shop, number: int, run_id: str) -> Journey:
    path = PATHS[number % len(PATHS)]
    j = Journey(
        number=number,
        path=path,
        key=f"chaos-{run_id}-{number}-{uuid.UUID(int=shop.rng.getrandbits(128)).hex[:8]}",
        email=f"chaos-{run_id}-{number}@example.com",
    )
    try:
        await run_path(Trip(shop, j))
        j.finished = True
    except GaveUp as exc:
        j.gave_up = str(exc)
    except (httpx.HTTPError, stripe.StripeError, KeyError, ValueError) as exc:
        j.gave_up = f"{type(exc).__name__}: {exc}"
    return j
