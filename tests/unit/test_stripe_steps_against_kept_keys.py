"""The money steps of activities/stripe_payments.py at edges an adversarial review found,
run against a small stand-in StripeClient that keeps idempotency keys as Stripe does: the
first answer of a request that began executing (a 5xx, a 400 state refusal, a success) is
saved under its key and replayed to every later request with that key."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import stripe
from temporalio.testing import ActivityEnvironment

from activities.stripe_payments import StripeActivities
from vult.domain.contracts import CancelPaymentIntent, CreatePaymentIntent

OWNER = "vult-test"


def saved_500() -> stripe.APIError:
    return stripe.APIError("An unknown error occurred", http_status=500)


def unexpected_state(status: str) -> stripe.InvalidRequestError:
    return stripe.InvalidRequestError(
        f"You cannot cancel this PaymentIntent because it has a status of {status}.",
        None,
        code="payment_intent_unexpected_state",
        http_status=400,
    )


class Keys:
    """Stripe's idempotency store: key -> the first answer (a result or an error)."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}
        self.sent: list[str] = []
        # key -> an answer to save the first time that key is used (a saved 5xx, say),
        # instead of doing the work.
        self.first_answer: dict[str, BaseException] = {}

    def run(self, key: str | None, work: Callable[[], Any]) -> Any:
        if key is not None:
            self.sent.append(key)
            if key in self.saved:
                answer = self.saved[key]
            elif key in self.first_answer:
                answer = self.saved[key] = self.first_answer.pop(key)
            else:
                try:
                    answer = work()
                except stripe.StripeError as exc:
                    answer = exc
                self.saved[key] = answer
        else:
            answer = work()
        if isinstance(answer, BaseException):
            raise answer
        return answer


def obj(cls: type[stripe.StripeObject], data: dict[str, Any]) -> Any:
    return cls.construct_from(dict(data), "sk_test_adversarial")


class FakePaymentIntents:
    def __init__(self, stripe_: FakeStripe) -> None:
        self.s = stripe_

    async def create_async(self, params: dict[str, Any], options: dict[str, Any]) -> Any:
        def work() -> Any:
            n = len(self.s.intents) + 1
            pi = {
                "id": f"pi_{n}",
                "object": "payment_intent",
                "client_secret": f"pi_{n}_secret_x",
                "amount": params["amount"],
                "currency": params["currency"],
                "status": "requires_payment_method",
                "metadata": dict(params.get("metadata") or {}),
                "customer": params.get("customer"),
                "payment_method": params.get("payment_method"),
                "capture_method": params.get("capture_method", "automatic"),
            }
            if params.get("confirm"):
                pi["status"] = "requires_capture"
            self.s.intents[pi["id"]] = pi
            return obj(stripe.PaymentIntent, pi)

        return self.s.keys.run(options.get("idempotency_key"), work)

    async def retrieve_async(self, pi: str, params: dict[str, Any] | None = None) -> Any:
        return obj(stripe.PaymentIntent, self.s.intents[pi])

    async def list_async(self, params: dict[str, Any]) -> Any:
        found = [
            obj(stripe.PaymentIntent, i)
            for i in reversed(self.s.intents.values())
            if i.get("customer") == params.get("customer")
        ]
        return obj(stripe.ListObject, {"object": "list", "data": found, "has_more": False})

    async def cancel_async(self, pi: str, options: dict[str, Any]) -> Any:
        def work() -> Any:
            intent = self.s.intents[pi]
            if intent["status"] in ("succeeded", "processing", "canceled"):
                raise unexpected_state(intent["status"])
            intent["status"] = "canceled"
            return obj(stripe.PaymentIntent, intent)

        return self.s.keys.run(options.get("idempotency_key"), work)


class FakeCustomers:
    def __init__(self, stripe_: FakeStripe) -> None:
        self.s = stripe_

    async def create_async(self, params: dict[str, Any], options: dict[str, Any]) -> Any:
        def work() -> Any:
            self.s.customers += 1
            return obj(stripe.Customer, {"id": f"cus_{self.s.customers}", "object": "customer"})

        return self.s.keys.run(options.get("idempotency_key"), work)


class FakeV1:
    def __init__(self, stripe_: FakeStripe) -> None:
        self.payment_intents = FakePaymentIntents(stripe_)
        self.customers = FakeCustomers(stripe_)


class FakeStripe:
    """Just enough of `stripe.StripeClient` for the steps exercised here."""

    def __init__(self) -> None:
        self.keys = Keys()
        self.intents: dict[str, dict[str, Any]] = {}
        self.customers = 0
        self.v1 = FakeV1(self)


def activities(fake: FakeStripe) -> StripeActivities:
    return StripeActivities(fake, OWNER)  # type: ignore[arg-type]  # the stand-in client


# FINDING 1: the Customer that keeps the card (save_card, capture at shipment with
# ON_AUTHORIZATION_EXPIRY=reauthorize) is created under ONE idempotency key
# (`order:{id}:customer`), outside `_under_fresh_keys`. Stripe saves a 5xx under that key and
# replays it for 24 hours, so every try of create_payment_intent (every Temporal retry, every
# "Pay" the customer presses) fails with the replayed 5xx: the order cannot be paid for a day.
async def test_a_saved_5xx_on_the_order_customer_key_does_not_stop_the_customer_paying() -> None:
    fake = FakeStripe()
    order_id = uuid.uuid4()
    fake.keys.first_answer[f"order:{order_id}:customer"] = saved_500()
    req = CreatePaymentIntent(
        order_id=order_id,
        order_number="VLT-20260101-000001",
        amount=10800,
        currency="USD",
        idempotency_key=f"order:{order_id}:payment-intent:1",
        capture_method="manual",
        save_card=True,
    )
    env = ActivityEnvironment()
    acts = activities(fake)
    outcomes: list[object] = []
    for _ in range(3):  # three tries of the step (Temporal's retries, the customer again)
        try:
            outcomes.append(await env.run(acts.create_payment_intent, req))
        except stripe.StripeError as exc:
            outcomes.append(exc)
    assert any(not isinstance(o, Exception) for o in outcomes), (
        f"every try replayed the saved 5xx of the customer key: {outcomes}"
    )


# FINDING 2: the fresh-key sequence of one ask to cancel (was `key`, `key:2`, `key:3`, `key:4`)
# is the key of the NEXT ask (workflows/steps.py ask_to_cancel/cancel_payment_intent: ask n
# sends `order:{id}:cancel:{pi}:{n+1}`). A first ask that met a saved 5xx and then a refusal
# (the PaymentIntent mid-charge) spends `...:2`; the workflow's next ask sends `...:2`, gets
# that refusal replayed, and reports the PaymentIntent as it now stands (requires_payment_method
# after the charge failed) as if the cancel was done: the order is Cancelled and the
# PaymentIntent is left open with the customer's client secret, payable.
async def test_the_next_ask_to_cancel_is_not_answered_by_a_key_the_previous_ask_spent() -> None:
    fake = FakeStripe()
    order_id = uuid.uuid4()
    pi = "pi_1"
    fake.intents[pi] = {
        "id": pi,
        "object": "payment_intent",
        "amount": 10800,
        "currency": "usd",
        "status": "processing",
        "metadata": {"order_id": str(order_id), "vult_owner": OWNER},
    }
    base = f"order:{order_id}:cancel:{pi}"  # ask 0 (workflows/steps.py ask_to_cancel)
    fake.keys.first_answer[base] = saved_500()
    env = ActivityEnvironment()
    acts = activities(fake)

    first = await env.run(
        acts.cancel_payment_intent, CancelPaymentIntent(payment_intent_id=pi, idempotency_key=base)
    )
    assert first.status == "processing"  # mid-charge: the workflow asks again later

    fake.intents[pi]["status"] = "requires_payment_method"  # the charge failed meanwhile
    second = await env.run(
        acts.cancel_payment_intent,
        CancelPaymentIntent(payment_intent_id=pi, idempotency_key=f"{base}:2"),  # ask 1
    )
    assert fake.intents[pi]["status"] == "canceled", (
        f"ask 1 was answered by ask 0's spent key {base}:2 (keys sent: {fake.keys.sent}); "
        f"reported {second.status}, the PaymentIntent is left open and payable"
    )


# FINDING 3 (low): an off-session renewal declined by the card is cancelled when the decline
# comes back as the request's answer (_cancel_refused), but not when the same declined
# PaymentIntent is found by `_made_for` (the try's answer was lost after Stripe made and
# declined it, so the retry finds it before sending; or a saved 5xx after Stripe did the work):
# it is handed to the workflow, which gives up on it (found.status != requires_capture), and it
# stays `requires_payment_method` with the customer's saved card attached, answered by nobody.
async def test_a_declined_renewal_found_again_on_a_retry_is_cancelled_too() -> None:
    fake = FakeStripe()
    order_id = uuid.uuid4()
    key = f"order:{order_id}:payment-intent:2"
    # Stripe made the renewal and the card declined it; the answer never reached the worker.
    fake.intents["pi_1"] = {
        "id": "pi_1",
        "object": "payment_intent",
        "client_secret": "pi_1_secret_x",
        "amount": 10800,
        "currency": "usd",
        "status": "requires_payment_method",
        "last_payment_error": {"message": "Your card was declined.", "code": "card_declined"},
        "customer": "cus_1",
        "payment_method": "pm_1",
        "metadata": {"order_id": str(order_id), "vult_owner": OWNER, "vult_attempt_key": key},
    }
    req = CreatePaymentIntent(
        order_id=order_id,
        order_number="VLT-20260101-000001",
        amount=10800,
        currency="USD",
        idempotency_key=key,
        capture_method="manual",
        payment_method="pm_1",
        customer="cus_1",
    )
    try:
        await ActivityEnvironment().run(activities(fake).create_payment_intent, req)
    except Exception:  # noqa: BLE001 - a refusal is a fine answer; the PaymentIntent matters
        pass
    assert fake.intents["pi_1"]["status"] == "canceled", (
        "the declined off-session renewal is left open: "
        f"{fake.intents['pi_1']['status']}, keys sent {fake.keys.sent}"
    )
