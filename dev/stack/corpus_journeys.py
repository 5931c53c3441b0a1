"""The replay corpus's journeys: one order (or late payment) down each path, on the real
stack, its history saved for the replay test (tests/replay/, docs/architecture.md).

Run by `devstack.record_corpus` in a process of its own whose import path starts with the
tree being recorded, so the same journeys record today's code or an older commit's. It
therefore imports only what every release since the restructure has: `worker.build_worker`,
`api.app.create_app`, the settings, the Temporal client, the database engine and the
Stripe client. The programs (Temporal dev server, PostgreSQL, the Stripe emulator) are
started by the parent; this side runs the worker and the API in-process and drives them
over HTTP as a shop and ops would, with the official Stripe SDK as the customer's browser.

Where a path needs Stripe or the database to refuse a call (a parked order, a cancellation
that could not be recorded), the refusal is real at the boundary: the Stripe client the
worker is given refuses that one call as Stripe would, or a PostgreSQL trigger refuses that
one write. Payloads are recorded unencrypted (no PAYLOAD_ENCRYPTION_KEYS), so the corpus
replays without a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import stripe
import uvicorn
from sqlalchemy import text
from temporalio.client import WorkflowHistory

SECRET = "whsec_corpus_recording"
OPS_TOKEN = "corpus-ops-token"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
RUNNER = "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001"
GOOD, DECLINED = "4242424242424242", "4000000000000341"
THREE_D_SECURE, DISPUTED = "4000002760003184", "4000000000000259"
EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.requires_action",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.refund.updated",
    "refund.failed",
]
# Short timers, so every path's timers fire within a recording.
TIMING_ENV = {
    "PAYMENT_WINDOW": "PT25S",
    "PAYMENT_RECONCILE_AFTER": "PT3S",
    "PAYMENT_RECONCILE_MAX_INTERVAL": "PT5S",
    "CANCELLED_GRACE_PERIOD": "PT4S",
    "ATTENTION_RETRY": "PT6S",
    "RETURN_WINDOW": "PT4S",
    "AUTHORIZATION_VALIDITY": "PT12S",
    "AUTHORIZATION_REMINDER": "PT6S",
}
_POLL_S, _WAIT_S = 0.1, 60.0
# How long a hold of a lapse journey lasts: Stripe's (days) cannot be waited for; a release
# from before capture_before counts AUTHORIZATION_VALIDITY instead.
_HOLD_S = 12
SLOW_STRIPE_S = 3.0


class Refusal:
    """Stripe's answers for the calls a path makes it refuse: (resource, method) -> the
    PaymentIntent ids it refuses them for."""

    def __init__(self) -> None:
        self.refused: dict[tuple[str, str], set[str]] = {}
        self.succeeded: set[str] = set()  # read back as succeeded (a confirm that raced)
        self.processing: set[str] = set()  # read back as processing (a slow bank debit)
        self.slow: set[str] = set()  # Stripe answers calls about these after a while

    def check(self, resource: str, method: str, pi: str | None) -> None:
        if pi is not None and pi in self.refused.get((resource, method), set()):
            raise stripe.InvalidRequestError(
                f"The {resource} call was refused (recorded refusal for {pi})",
                param=None,
                http_status=400,
            )


class _Resource:
    def __init__(self, inner: Any, name: str, refusal: Refusal) -> None:
        self._inner, self._name, self._refusal = inner, name, refusal

    def __getattr__(self, method: str) -> Any:
        call = getattr(self._inner, method)
        if not method.endswith("_async"):
            return call

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            pi = args[0] if args and isinstance(args[0], str) else None
            params = kwargs.get("params") or (args[0] if args and isinstance(args[0], dict) else {})
            pi = pi or (params.get("payment_intent") if isinstance(params, dict) else None)
            self._refusal.check(self._name, method.removesuffix("_async"), pi)
            if pi in self._refusal.slow:
                await asyncio.sleep(SLOW_STRIPE_S)
            answer = await call(*args, **kwargs)
            if self._name == "payment_intents" and pi in self._refusal.succeeded:
                answer["status"] = "succeeded"
                answer["amount_received"] = answer["amount"]
            if self._name == "payment_intents" and pi in self._refusal.processing:
                answer["status"] = "processing"
            return answer

        return guarded


class _V1:
    def __init__(self, inner: Any, refusal: Refusal) -> None:
        self._inner, self._refusal = inner, refusal

    def __getattr__(self, name: str) -> Any:
        return _Resource(getattr(self._inner, name), name, refusal=self._refusal)


class RefusingStripe:
    """The worker's Stripe client: the real one, but for the refusals a path asks for."""

    def __init__(self, inner: stripe.StripeClient, refusal: Refusal) -> None:
        self.v1 = _V1(inner.v1, refusal)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _without_local_paths(text: str) -> str:
    """Failure stack traces name files on this machine: the corpus keeps none of them. The
    site-packages folders go first, as they may lie inside the tree."""
    here = str(Path(__file__).resolve().parent)
    local = [(site, "<site-packages>") for site in sys.path if site.endswith("site-packages")]
    local += [(sys.base_prefix, "<python>"), (os.getcwd(), "<tree>"), (here, "<recorder>")]
    for path, shown in local:
        text = text.replace(path, shown)
    return text


def signed(event: dict[str, Any]) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    now = int(time.time())
    mac = hmac.new(SECRET.encode(), b"%d." % now + payload, hashlib.sha256).hexdigest()
    return payload, f"t={now},v1={mac}"


class Recorder:
    def __init__(
        self,
        out: Path,
        api: httpx.AsyncClient,
        stripe_client: stripe.StripeClient,
        temporal: Any,
        engine: Any,
        refusal: Refusal,
        stripe_base: str,
        api_url: str,
    ) -> None:
        self.out, self.api, self.stripe, self.temporal = out, api, stripe_client, temporal
        self.engine, self.refusal, self.stripe_base, self.api_url = (
            engine,
            refusal,
            stripe_base,
            api_url,
        )
        self.recorded: dict[str, str] = {}
        self.shop: httpx.AsyncClient | None = None  # the at_shipment API
        self.renewing: httpx.AsyncClient | None = None  # at_shipment, lapsed holds renewed
        # Paths begun and not yet saved: their workflow, saved as it stands if the
        # journey stops (an older release may not have a step; its history still counts).
        self.begun: dict[str, tuple[str, str, str]] = {}

    # ---- what a shop, a customer and ops do ------------------------------------------

    async def place(
        self,
        path: str,
        what: str,
        *,
        at_shipment: bool = False,
        renewing: bool = False,
        quantity: int = 1,
    ) -> str:
        """Place an order; with a path, its workflow is the one that path records.
        `at_shipment`: through the API placing orders under PAYMENT_CAPTURE=at_shipment;
        `renewing`: the one that also re-authorizes a lapsed hold (ON_AUTHORIZATION_EXPIRY)."""
        body = {
            "customerEmail": "corpus@example.com",
            "shippingAddress": {
                "fullName": "Corpus Recorder",
                "addressLine1": "1 Main St",
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62701",
                "country": "US",
            },
            "lineItems": [{"productId": RUNNER, "quantity": quantity}],
        }
        api = self.shop if at_shipment and self.shop is not None else self.api
        if renewing and self.renewing is not None:
            api = self.renewing
        created = await api.post("/api/orders", json=body)
        assert created.status_code == 201, created.text
        order_id = str(created.json()["orderId"])
        if path:
            self.begin(path, f"order-{order_id}", what)
        return order_id

    async def pay(self, order_id: str, card: str | None, hold_seconds: int | None = None) -> str:
        """Ask to pay; with a card, confirm it as Stripe.js would. The PaymentIntent id.
        `hold_seconds`: an authorization that lapses that soon (the emulator's control)."""
        answer = await self.api.post(f"/api/orders/{order_id}/payment")
        assert answer.status_code == 200, answer.text
        pi = str(answer.json()["paymentIntentId"])
        if hold_seconds is not None:
            await self.control(f"/_vult/payment_intents/{pi}/hold", {"seconds": hold_seconds})
        if card is not None:
            method = await self.stripe.v1.payment_methods.create_async(
                params={
                    "type": "card",
                    "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
                }
            )
            await self.stripe.v1.payment_intents.update_async(
                pi, params={"payment_method": method.id}
            )
            with contextlib.suppress(stripe.CardError):
                await self.stripe.v1.payment_intents.confirm_async(pi)
        return pi

    async def status(self, order_id: str, want: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for _ in range(int(_WAIT_S / _POLL_S)):
            body = (await self.api.get(f"/api/orders/{order_id}")).json()
            if body.get("status") == want:
                return body
            await asyncio.sleep(_POLL_S)
        raise AssertionError(f"order {order_id} did not become {want}: {body}")

    async def paid(self, path: str, what: str) -> tuple[str, str]:
        order_id = await self.place(path, what)
        pi = await self.pay(order_id, GOOD)
        await self.status(order_id, "Confirmed")
        return order_id, pi

    async def ops(self, order_id: str, step: str, body: Any = None) -> httpx.Response:
        return await self.api.post(f"/api/ops/orders/{order_id}/{step}", json=body, headers=OPS)

    async def fulfil_to_shipped(self, order_id: str) -> None:
        for step, body in (
            ("processing", None),
            ("ship", {"carrier": "UPS", "trackingNumber": "1Z999"}),
        ):
            done = await self.ops(order_id, step, body)
            assert done.status_code == 204, (step, done.text)

    async def fulfil(self, order_id: str) -> None:
        for step, body in (
            ("processing", None),
            ("ship", {"carrier": "UPS", "trackingNumber": "1Z999"}),
            ("deliver", None),
        ):
            done = await self.ops(order_id, step, body)
            assert done.status_code == 204, (step, done.text)

    async def cancel(self, order_id: str) -> httpx.Response:
        return await self.api.post(f"/api/orders/{order_id}/cancel")

    async def send_event(self, kind: str, obj: dict[str, Any], event_id: str | None = None) -> None:
        """A signed event as Stripe sends it (a redelivery, or one the emulator never sends)."""
        event = {
            "id": event_id or f"evt_corpus_{uuid.uuid4().hex}",
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": obj},
        }
        payload, signature = signed(event)
        answer = await self.api.post(
            "/api/webhooks/stripe",
            content=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
        )
        assert answer.status_code == 200, answer.text

    async def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The emulator's test controls (what a bank or a cardholder does)."""
        async with httpx.AsyncClient(base_url=self.stripe_base, timeout=10) as http:
            if path == "/_vult/authenticate":
                answer = await http.post(path, content=json.dumps({**body, "key": "pk_test_x"}))
            else:
                headers = {"Authorization": "Bearer sk_test_corpus"}
                answer = await http.post(path, json=body, headers=headers)
        answer.raise_for_status()
        return dict(answer.json())

    async def payment_status(self, order_id: str, want: str) -> None:
        for _ in range(int(_WAIT_S / _POLL_S)):
            if (await self.api.get(f"/api/orders/{order_id}")).json().get("paymentStatus") == want:
                return
            await asyncio.sleep(_POLL_S)
        raise AssertionError(f"order {order_id}: paymentStatus never became {want}")

    async def charge_of(self, pi: str) -> dict[str, Any]:
        latest = (await self.intent(pi))["latest_charge"]
        charge_id = latest["id"] if isinstance(latest, dict) else latest  # expanded, or not
        return dict((await self.stripe.v1.charges.retrieve_async(charge_id)).to_dict())

    async def dispute_of(self, pi: str) -> str:
        for _ in range(int(_WAIT_S / _POLL_S)):
            listed = await self.stripe.v1.disputes.list_async(params={"payment_intent": pi})
            if listed.data:
                return str(listed.data[0].id)
            await asyncio.sleep(_POLL_S)
        raise AssertionError(f"no dispute opened for {pi}")

    async def intent(self, pi: str) -> dict[str, Any]:
        return dict((await self.stripe.v1.payment_intents.retrieve_async(pi)).to_dict())

    async def closed(self, workflow_id: str) -> None:
        """Wait for the workflow to close (one a webhook is about to start: to exist first)."""
        handle = self.temporal.get_workflow_handle(workflow_id)
        for _ in range(int(_WAIT_S / _POLL_S)):
            try:
                await handle.describe()
                break
            except Exception:  # not started yet (the RPC error class differs by release)
                await asyncio.sleep(_POLL_S)
        await asyncio.wait_for(handle.result(), timeout=_WAIT_S)

    @contextlib.asynccontextmanager
    async def webhooks_lost(self) -> AsyncIterator[None]:
        await self._register(f"http://127.0.0.1:{_free_port()}/nowhere")
        try:
            yield
        finally:
            await self._register(f"{self.api_url}/api/webhooks/stripe")

    async def _register(self, url: str) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                f"{self.stripe_base}/_config/webhooks/corpus",
                json={"url": url, "secret": SECRET, "events": EVENTS},
            )
            answer.raise_for_status()

    @contextlib.asynccontextmanager
    async def status_write_refused(self, order_id: str, status: str) -> AsyncIterator[None]:
        """PostgreSQL refuses (a check violation) the write of `status` for this order."""
        name = f"corpus_refuse_{order_id.replace('-', '')[:12]}"
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"RAISE EXCEPTION 'refused for the corpus' USING ERRCODE = 'check_violation'; "
                    f"END $$"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE UPDATE ON orders FOR EACH ROW WHEN "
                    f"(NEW.order_id = '{order_id}' AND NEW.status = '{status}') "
                    f"EXECUTE FUNCTION {name}()"
                )
            )
        try:
            yield
        finally:
            async with self.engine.begin() as conn:
                await conn.execute(text(f"DROP TRIGGER {name} ON orders"))
                await conn.execute(text(f"DROP FUNCTION {name}()"))

    async def state(self, order_id: str) -> dict[str, Any]:
        """The workflow's `state` query, as plain JSON (no model of any release needed)."""
        answer = await self.temporal.get_workflow_handle(f"order-{order_id}").query("state")
        return dict(answer)

    async def attention(self, order_id: str, flagged: bool) -> None:
        for _ in range(int(_WAIT_S / _POLL_S)):
            if ((await self.state(order_id))["ops"].get("attention") is not None) == flagged:
                return
            await asyncio.sleep(_POLL_S)
        raise AssertionError(f"order {order_id}: attention never became {flagged}")

    # ---- saving ----------------------------------------------------------------------

    def begin(self, path: str, workflow_id: str, what: str) -> None:
        """`workflow_id` may name a run: `<id>@<run id>`."""
        task = asyncio.current_task()
        self.begun[path] = (workflow_id, what, task.get_name() if task else "")

    async def _run_history(self, workflow_id: str, run_id: str | None) -> WorkflowHistory:
        """That run's history; with no run named, the first run's (each later run's start
        names the run it continued, back to the first)."""
        if run_id is not None:
            named = self.temporal.get_workflow_handle(workflow_id, run_id=run_id)
            only: WorkflowHistory = await named.fetch_history()
            return only
        previous: str | None = None
        for _ in range(100):
            handle = self.temporal.get_workflow_handle(workflow_id, run_id=previous)
            history: WorkflowHistory = await handle.fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes
            if not started.continued_execution_run_id:
                return history
            previous = started.continued_execution_run_id
        raise AssertionError(f"{workflow_id}: no first run within 100 continuations")

    async def first_run(self, path: str) -> None:
        """Record the run the path began with, even if it continues as new later (a
        delivered order's waits for its return window, past the server's suggestion)."""
        workflow_id, what, journey = self.begun[path]
        found = await self.temporal.get_workflow_handle(workflow_id).describe()
        self.begun[path] = (f"{workflow_id}@{found.run_id}", what, journey)

    async def finish(self, path: str) -> None:
        """Wait for the workflow `path` records to close, then save its history."""
        workflow_id, _, _ = self.begun[path]
        await self.closed(workflow_id.partition("@")[0])
        await self.save(path)

    async def save(self, path: str, stopped: BaseException | None = None) -> None:
        """Save the run `begin` named, or else the path's first run: a long path may
        continue as new past the server's suggestion, and its later runs hold only its end."""
        workflow_id, what, _ = self.begun.pop(path)
        workflow_id, _, run_id = workflow_id.partition("@")
        history = await self._run_history(workflow_id, run_id or None)
        (self.out / f"{path}.json").write_text(_without_local_paths(history.to_json()))
        if stopped is not None:
            what = f"{what} (the journey stopped there: {stopped!r})"[:400]
        self.recorded[path] = what
        print(f"  recorded {path}: {len(history.events)} events", flush=True)


Journey = Callable[[Recorder], Awaitable[None]]


async def paid(r: Recorder) -> None:
    await r.paid("paid", "paid, Confirmed and waiting for fulfilment")


async def paid_delivered(r: Recorder) -> None:
    order_id, _ = await r.paid("paid_delivered", "paid, processed, shipped, delivered")
    await r.fulfil(order_id)
    await r.finish("paid_delivered")


async def declined_then_paid(r: Recorder) -> None:
    order_id = await r.place(
        "declined_then_paid",
        "declined, paid with another card (the old PaymentIntent closed), delivered",
    )
    await r.pay(order_id, DECLINED)
    await r.status(order_id, "Failed")
    await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    await r.fulfil(order_id)
    await r.finish("declined_then_paid")


async def reconciled(r: Recorder) -> None:
    order_id = await r.place(
        "reconciled_without_webhook",
        "paid while the webhook was lost: confirmed by the reconcile timer",
    )
    async with r.webhooks_lost():
        await r.pay(order_id, GOOD)
        await r.status(order_id, "Confirmed")
    await r.save("reconciled_without_webhook")


async def cancelled_pending(r: Recorder) -> None:
    order_id = await r.place("cancelled_pending", "cancelled from Pending, grace over")
    assert (await r.cancel(order_id)).status_code == 204
    await r.finish("cancelled_pending")


async def cancelled_payment_processing(r: Recorder) -> None:
    order_id = await r.place(
        "cancelled_payment_processing",
        "cancelled from PaymentProcessing: the PaymentIntent cancelled, grace over",
    )
    await r.pay(order_id, None)
    await r.status(order_id, "PaymentProcessing")
    assert (await r.cancel(order_id)).status_code == 204
    await r.finish("cancelled_payment_processing")


async def cancelled_failed(r: Recorder) -> None:
    order_id = await r.place("cancelled_failed", "declined, then cancelled from Failed")
    await r.pay(order_id, DECLINED)
    await r.status(order_id, "Failed")
    assert (await r.cancel(order_id)).status_code == 204
    await r.finish("cancelled_failed")


async def refunded(r: Recorder) -> None:
    order_id, pi = await r.paid(
        "cancelled_confirmed_refunded",
        "paid, cancelled from Confirmed: refunded, charge.refunded read back, grace over",
    )
    assert (await r.cancel(order_id)).status_code == 204
    await r.status(order_id, "Cancelled")
    charge = {
        "object": "charge",
        "id": f"ch_{pi}",
        "payment_intent": pi,
        "metadata": {"order_id": order_id},
        "refunded": True,
    }
    await r.send_event("charge.refunded", charge)
    await r.finish("cancelled_confirmed_refunded")
    # The same success delivered again after the workflow closed: the late-payment
    # workflow finds the refund already made.
    r.begin(
        "late_payment_refunded_order",
        f"late-payment-{pi}",
        "a success redelivered after the refunded order's workflow closed",
    )
    await r.send_event("payment_intent.succeeded", await r.intent(pi))
    await r.finish("late_payment_refunded_order")


async def delivered_and_closed(r: Recorder) -> tuple[str, str]:
    """An order paid, fulfilled and delivered, its workflow closed: (order id, its
    PaymentIntent), for the after-close journeys."""
    order_id, pi = await r.paid("", "")
    await r.fulfil(order_id)
    await r.closed(f"order-{order_id}")
    return order_id, pi


async def late_for_delivered(r: Recorder) -> None:
    order_id, pi = await delivered_and_closed(r)
    r.begin(
        "late_payment_delivered_order",
        f"late-payment-{pi}",
        "a success redelivered after delivery: the order's own payment, left alone",
    )
    await r.send_event("payment_intent.succeeded", await r.intent(pi))
    await r.finish("late_payment_delivered_order")


async def superseded_success(r: Recorder) -> None:
    order_id = await r.place(
        "superseded_success_refunded",
        "a success on the superseded PaymentIntent: refunded (parked if Stripe refused the "
        "refund), the order still paying with the new one",
    )
    first = await r.pay(order_id, DECLINED)
    await r.status(order_id, "Failed")
    await r.pay(order_id, None)  # the retry: the declined PaymentIntent is closed
    await r.status(order_id, "PaymentProcessing")
    # Stripe says the first PaymentIntent succeeded after all (its confirm raced the
    # cancel): the emulator cannot charge a declined one, so its read-back says so.
    r.refusal.succeeded.add(first)
    await r.send_event("payment_intent.succeeded", await r.intent(first))
    for _ in range(int(_WAIT_S / _POLL_S)):
        state = await r.state(order_id)
        if state["money"].get("refunds") or state["ops"].get("attention"):
            break
        await asyncio.sleep(_POLL_S)
    r.refusal.succeeded.discard(first)
    await r.save("superseded_success_refunded")


async def parked_then_retried(r: Recorder) -> None:
    order_id, pi = await r.paid(
        "parked_then_retried",
        "cancel of a paid order, refund refused: parked; ops retry refunds and cancels",
    )
    r.refusal.refused[("refunds", "create")] = {pi}
    answer = await r.cancel(order_id)
    assert answer.status_code == 503, answer.text  # recorded; finished later
    await r.attention(order_id, True)
    r.refusal.refused.clear()
    assert (await r.ops(order_id, "retry")).status_code == 204
    await r.status(order_id, "Cancelled")
    await r.finish("parked_then_retried")


async def pending_cancel_finished(r: Recorder) -> None:
    order_id = await r.place(
        "pending_cancel_finished_by_workflow",
        "a cancel whose status write was refused: parked, finished by the attention timer",
    )
    async with r.status_write_refused(order_id, "Cancelled"):
        answer = await r.cancel(order_id)
        assert answer.status_code == 503, answer.text
        await r.attention(order_id, True)
    await r.status(order_id, "Cancelled")
    await r.finish("pending_cancel_finished_by_workflow")


async def payment_window_expired(r: Recorder) -> None:
    order_id = await r.place(
        "payment_window_expired", "never paid: cancelled when the payment window closed"
    )
    await r.status(order_id, "Cancelled")
    await r.finish("payment_window_expired")


async def continued_as_new(r: Recorder) -> None:
    order_id, pi = await r.paid(
        "continued_as_new_first_run",
        "redeliveries past the suggestion, then new events and a cancel: continued as new",
    )
    handle = r.temporal.get_workflow_handle(f"order-{order_id}")
    first_run = (await handle.describe()).run_id
    intent = await r.intent(pi)
    # One event redelivered (the same id) grows the history past the server's suggestion:
    # a redelivery is dropped by the signal handler, before the main loop's check.
    redelivered = f"evt_corpus_{uuid.uuid4().hex}"
    for _ in range(40):
        await r.send_event("payment_intent.succeeded", intent, event_id=redelivered)
    # Then Stripe slows down: an event holds the lock for a while (its read-back), the
    # customer's cancel waits for it, and once the run has decided to continue as new it
    # waits for that cancel (a slow refund), during which three more events arrive:
    # they are carried into the next run.
    r.refusal.slow.add(pi)
    await r.send_event("payment_intent.succeeded", intent)
    cancel = asyncio.create_task(r.cancel(order_id))
    await asyncio.sleep(SLOW_STRIPE_S + 1)
    for _ in range(3):
        await r.send_event("payment_intent.succeeded", intent)
    assert (await cancel).status_code == 204
    r.refusal.slow.discard(pi)
    for _ in range(int(_WAIT_S / _POLL_S)):
        if (await r.temporal.get_workflow_handle(handle.id).describe()).run_id != first_run:
            break
        await asyncio.sleep(_POLL_S)
    else:
        raise AssertionError("the order did not continue as new")
    await r.status(order_id, "Cancelled")
    await r.closed(handle.id)
    _, what, journey = r.begun["continued_as_new_first_run"]
    r.begun["continued_as_new_first_run"] = (f"{handle.id}@{first_run}", what, journey)
    await r.save("continued_as_new_first_run")
    r.begin(
        "continued_as_new_second_run",
        handle.id,
        "the run after continue-as-new: the carried state and events, then delivered",
    )
    second = await r.temporal.get_workflow_handle(handle.id).describe()
    _, what, journey = r.begun["continued_as_new_second_run"]
    r.begun["continued_as_new_second_run"] = (f"{handle.id}@{second.run_id}", what, journey)
    await r.save("continued_as_new_second_run")


# The journeys below do not depend on a webhook arriving: another journey cuts the
# emulator's webhooks for a while (reconciled), and nothing but fulfilment and cancel reads
# a refund or a dispute back. What an event would do, they do by a step that reads Stripe.


async def dashboard_partial_refund(r: Recorder) -> None:
    order_id, pi = await r.paid(
        "dashboard_partial_refund_then_cancelled",
        "paid; 10% refunded in the Dashboard (its charge.refunded read back); cancelled: the "
        "rest refunded; grace over",
    )
    amount = int((await r.intent(pi))["amount"])
    await r.stripe.v1.refunds.create_async(params={"payment_intent": pi, "amount": amount // 10})
    await r.send_event("charge.refunded", await r.charge_of(pi))
    await r.payment_status(order_id, "partially_refunded")
    assert (await r.cancel(order_id)).status_code == 204
    await r.finish("dashboard_partial_refund_then_cancelled")


async def dashboard_full_refund(r: Recorder) -> None:
    order_id, pi = await r.paid(
        "dashboard_full_refund_not_fulfilled",
        "paid; refunded in full in the Dashboard: fulfilment refused (read back), flagged; "
        "cancelled with nothing more refunded; grace over",
    )
    await r.stripe.v1.refunds.create_async(params={"payment_intent": pi})
    assert (await r.ops(order_id, "processing")).status_code == 400
    assert (await r.cancel(order_id)).status_code == 204
    await r.finish("dashboard_full_refund_not_fulfilled")


async def disputed_then_won(r: Recorder) -> None:
    order_id = await r.place(
        "disputed_won_delivered",
        "paid with card 0259: disputed (read back at fulfilment: refused, flagged; cancel "
        "refused); the dispute won: processed, shipped, delivered",
    )
    pi = await r.pay(order_id, DISPUTED)
    await r.status(order_id, "Confirmed")
    dispute = await r.dispute_of(pi)
    assert (await r.ops(order_id, "processing")).status_code == 400
    await r.payment_status(order_id, "disputed")
    assert (await r.cancel(order_id)).status_code == 400
    await r.control(f"/_vult/disputes/{dispute}/close", {"outcome": "won"})
    await r.fulfil(order_id)
    await r.finish("disputed_won_delivered")


async def three_d_secure(r: Recorder) -> None:
    order_id = await r.place(
        "three_d_secure_confirmed",
        "paid with a 3-D Secure card: waits in PaymentProcessing, authenticated, Confirmed",
    )
    pi = await r.pay(order_id, THREE_D_SECURE)
    intent = await r.intent(pi)
    assert intent["status"] == "requires_action", intent["status"]
    await r.control(
        "/_vult/authenticate", {"client_secret": intent["client_secret"], "success": True}
    )
    await r.status(order_id, "Confirmed")
    await r.save("three_d_secure_confirmed")


async def window_waits(r: Recorder) -> None:
    order_id = await r.place(
        "payment_window_waits_for_processing",
        "the payment window closed while the PaymentIntent was processing: waited for, then "
        "paid and Confirmed",
    )
    pi = await r.pay(order_id, None)
    r.refusal.processing.add(pi)
    for _ in range(int(_WAIT_S / _POLL_S)):
        if (await r.state(order_id))["payments"].get("window_extended_until"):
            break
        await asyncio.sleep(_POLL_S)
    else:
        raise AssertionError("the payment window did not wait for the processing payment")
    r.refusal.processing.discard(pi)
    method = await r.stripe.v1.payment_methods.create_async(
        params={
            "type": "card",
            "card": {"number": GOOD, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    await r.stripe.v1.payment_intents.update_async(pi, params={"payment_method": method.id})
    await r.stripe.v1.payment_intents.confirm_async(pi)
    await r.status(order_id, "Confirmed")
    await r.save("payment_window_waits_for_processing")


async def refund_after_close(r: Recorder) -> None:
    order_id, pi = await delivered_and_closed(r)
    r.begin(
        "after_close_refund_recorded",
        f"late-payment-{pi}",
        "a refund made in the Dashboard after delivery: recorded on the row after close",
    )
    await r.stripe.v1.refunds.create_async(params={"payment_intent": pi, "amount": 100})
    await r.send_event("charge.refunded", await r.charge_of(pi))
    await r.finish("after_close_refund_recorded")


async def events_together_after_close(r: Recorder) -> None:
    order_id, pi = await delivered_and_closed(r)
    r.begin(
        "after_close_events_together",
        f"late-payment-{pi}",
        "a success redelivered and a Dashboard refund after delivery, at once: each event "
        "reaches the after-close workflow (signal-with-start) and both are handled",
    )
    await r.stripe.v1.refunds.create_async(params={"payment_intent": pi, "amount": 100})
    await asyncio.gather(
        r.send_event("payment_intent.succeeded", await r.intent(pi)),
        r.send_event("charge.refunded", await r.charge_of(pi)),
    )
    await r.finish("after_close_events_together")


async def cancel_mid_charge(r: Recorder) -> None:
    order_id = await r.place(
        "cancel_recorded_mid_charge",
        "cancelled while the PaymentIntent was processing: recorded (202), asked again from "
        "a timer, cancelled once it could be; grace over",
    )
    pi = await r.pay(order_id, None)
    await r.status(order_id, "PaymentProcessing")
    r.refusal.processing.add(pi)
    answer = await r.cancel(order_id)
    assert answer.status_code == 202, answer.text
    r.refusal.processing.discard(pi)
    await r.status(order_id, "Cancelled")
    await r.finish("cancel_recorded_mid_charge")


async def failed_refund_resolved(r: Recorder) -> None:
    order_id, pi = await r.paid(
        "failed_refund_retried_then_resolved",
        "cancelled and refunded; the refund failed at the bank: parked for ops (no timer); "
        "retried, failed again; resolved by ops with a note; grace over",
    )
    assert (await r.cancel(order_id)).status_code == 204
    for _ in range(2):
        live: list[Any] = []
        for _ in range(int(_WAIT_S / _POLL_S)):  # the retry's refund is made meanwhile
            refunds = await r.stripe.v1.refunds.list_async(params={"payment_intent": pi})
            live = [x for x in refunds.data if x.status != "failed"]
            if live:
                break
            await asyncio.sleep(_POLL_S)
        await r.control(f"/_vult/refunds/{live[0].id}/fail", {})
        refund = dict(live[0].to_dict(), status="failed")
        await r.send_event("charge.refund.updated", refund)
        await r.attention(order_id, True)
        if not any(x.status == "failed" for x in refunds.data):  # the first failure
            assert (await r.ops(order_id, "retry")).status_code == 204
            await r.attention(order_id, False)
    note = {"note": "Paid back by bank transfer (corpus)"}
    assert (await r.ops(order_id, "resolve", note)).status_code == 204
    await r.finish("failed_refund_retried_then_resolved")


async def _line(r: Recorder, order_id: str) -> str:
    body = (await r.api.get(f"/api/orders/{order_id}")).json()
    return str(body["lineItems"][0]["lineItemId"])


async def _return(r: Recorder, order_id: str, body: dict[str, Any]) -> None:
    headers = {"Idempotency-Key": f"corpus-return-{uuid.uuid4()}", **OPS}
    for _ in range(2):  # sent twice: refunded once
        answer = await r.api.post(f"/api/ops/orders/{order_id}/returns", json=body, headers=headers)
        assert answer.status_code == 200, answer.text


async def _paid_then_one_shipped(r: Recorder, order_id: str) -> str:
    """Paid, processing, one of its two shoes shipped: the line's id."""
    await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    line = await _line(r, order_id)
    assert (await r.ops(order_id, "processing")).status_code == 204
    ship = {
        "carrier": "UPS",
        "trackingNumber": "1Z1",
        "lineItems": [{"lineItemId": line, "quantity": 1}],
    }
    answer = await r.ops(order_id, "ship", ship)
    assert answer.status_code == 204, answer.text
    return line


async def partly_shipped_then_returned(r: Recorder) -> None:
    order_id = await r.place(
        "partly_shipped_then_returned",
        "automatic capture: one of two shipped (the other's share refunded), that one "
        "returned (sent twice, refunded once), delivered; return window over",
        quantity=2,
    )
    await r.first_run("partly_shipped_then_returned")
    line = await _paid_then_one_shipped(r, order_id)
    await _return(
        r, order_id, {"reason": "Too small", "lineItems": [{"lineItemId": line, "quantity": 1}]}
    )
    assert (await r.ops(order_id, "deliver")).status_code == 204
    await r.finish("partly_shipped_then_returned")


async def at_shipment_partly_shipped_then_returned(r: Recorder) -> None:
    order_id = await r.place(
        "at_shipment_partly_shipped_then_returned",
        "capture at shipment: authorized, one of two shipped (its share captured, the rest "
        "released), delivered, an amount returned; return window over",
        at_shipment=True,
        quantity=2,
    )
    await r.first_run("at_shipment_partly_shipped_then_returned")
    await _paid_then_one_shipped(r, order_id)
    assert (await r.ops(order_id, "deliver")).status_code == 204
    await _return(r, order_id, {"reason": "Scuffed", "amount": 5.00})
    await r.finish("at_shipment_partly_shipped_then_returned")


async def at_shipment_cancelled(r: Recorder) -> None:
    order_id = await r.place(
        "at_shipment_cancelled_before_shipment",
        "capture at shipment: authorized, cancelled before shipment (released, no refund); "
        "grace over",
        at_shipment=True,
    )
    await r.first_run("at_shipment_cancelled_before_shipment")
    await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    assert (await r.cancel(order_id)).status_code == 204
    await r.finish("at_shipment_cancelled_before_shipment")


async def authorization_lapsed(r: Recorder) -> None:
    order_id = await r.place(
        "authorization_lapsed_cancelled",
        "capture at shipment: authorized, never shipped: reminded, then cancelled when the "
        "authorization lapsed (released); grace over",
        at_shipment=True,
    )
    await r.first_run("authorization_lapsed_cancelled")
    await r.pay(order_id, GOOD, hold_seconds=_HOLD_S)
    await r.status(order_id, "Confirmed")
    await r.status(order_id, "Cancelled")
    await r.finish("authorization_lapsed_cancelled")


async def shipment_repeated(r: Recorder) -> None:
    order_id = await r.place(
        "at_shipment_shipment_repeated_after_its_write_failed",
        "capture at shipment: one of two shipped, its share captured, the Shipped write "
        "refused; the same shipment sent again records it without moving money; delivered",
        at_shipment=True,
        quantity=2,
    )
    await r.first_run("at_shipment_shipment_repeated_after_its_write_failed")
    await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    line = await _line(r, order_id)
    assert (await r.ops(order_id, "processing")).status_code == 204
    ship = {
        "carrier": "UPS",
        "trackingNumber": "1Z5",
        "lineItems": [{"lineItemId": line, "quantity": 1}],
    }
    async with r.status_write_refused(order_id, "Shipped"):
        answer = await r.ops(order_id, "ship", ship)
        assert answer.status_code >= 400, answer.text
    other = {**ship, "lineItems": [{"lineItemId": line, "quantity": 2}]}
    assert (await r.ops(order_id, "ship", other)).status_code == 400  # other lines: refused
    assert (await r.ops(order_id, "ship", ship)).status_code == 204
    assert (await r.ops(order_id, "deliver")).status_code == 204
    await r.finish("at_shipment_shipment_repeated_after_its_write_failed")


async def captured_outside_then_partly_shipped(r: Recorder) -> None:
    order_id = await r.place(
        "at_shipment_captured_outside_then_partly_shipped",
        "capture at shipment: captured in full by hand (the Dashboard), then one of two "
        "shipped: what is held above its share refunded; delivered",
        at_shipment=True,
        quantity=2,
    )
    await r.first_run("at_shipment_captured_outside_then_partly_shipped")
    pi = await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    await r.stripe.v1.payment_intents.capture_async(pi)  # as the Dashboard does
    line = await _line(r, order_id)
    assert (await r.ops(order_id, "processing")).status_code == 204
    ship = {
        "carrier": "UPS",
        "trackingNumber": "1Z6",
        "lineItems": [{"lineItemId": line, "quantity": 1}],
    }
    assert (await r.ops(order_id, "ship", ship)).status_code == 204
    assert (await r.ops(order_id, "deliver")).status_code == 204
    await r.finish("at_shipment_captured_outside_then_partly_shipped")


async def return_refund_failed(r: Recorder) -> None:
    order_id = await r.place(
        "return_refund_failed_then_retried",
        "paid, shipped, an amount returned; that refund failed at the bank (parked), ops "
        "retried it (refunded again once); delivered",
    )
    await r.first_run("return_refund_failed_then_retried")
    pi = await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    await r.fulfil_to_shipped(order_id)
    await _return(r, order_id, {"reason": "Scuffed", "amount": 5.00})
    (refund,) = (await r.stripe.v1.refunds.list_async(params={"payment_intent": pi})).data
    await r.control(f"/_vult/refunds/{refund.id}/fail", {})
    await r.attention(order_id, True)
    assert (await r.ops(order_id, "retry")).status_code == 204
    await r.attention(order_id, False)
    for _ in range(int(_WAIT_S / _POLL_S)):
        listed = (await r.stripe.v1.refunds.list_async(params={"payment_intent": pi})).data
        if len(listed) == 2:
            break
        await asyncio.sleep(_POLL_S)
    assert (await r.ops(order_id, "deliver")).status_code == 204
    await r.finish("return_refund_failed_then_retried")


async def dispute_past_return_window(r: Recorder) -> None:
    order_id = await r.place(
        "delivered_dispute_open_past_return_window",
        "paid, delivered, disputed: the return window closed with the dispute open; Stripe "
        "asked again until the dispute was won, then the workflow closed",
    )
    await r.first_run("delivered_dispute_open_past_return_window")
    pi = await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    await r.fulfil(order_id)
    charge = (await r.intent(pi))["latest_charge"]
    charge_id = charge["id"] if isinstance(charge, dict) else charge
    dispute = await r.control(f"/_vult/charges/{charge_id}/dispute", {})
    await r.payment_status(order_id, "disputed")
    await asyncio.sleep(6)  # past the return window (4 s), the dispute open
    await r.control(f"/_vult/disputes/{dispute['id']}/close", {"outcome": "won"})
    await r.finish("delivered_dispute_open_past_return_window")


async def authorization_renewed(r: Recorder) -> None:
    order_id = await r.place(
        "authorization_renewed_then_delivered",
        "capture at shipment, lapsed holds renewed: the card saved at checkout; the hold "
        "lapsed (its capture_before) and was renewed off-session; shipped, captured, delivered",
        renewing=True,
    )
    await r.first_run("authorization_renewed_then_delivered")
    old = await r.pay(order_id, GOOD, hold_seconds=_HOLD_S)
    await r.status(order_id, "Confirmed")
    for _ in range(int(_WAIT_S / _POLL_S)):  # released once the renewal holds the money
        if (await r.intent(old))["status"] == "canceled":
            break
        await asyncio.sleep(_POLL_S)
    else:
        raise AssertionError(f"{old} was never released for a renewed hold")
    await r.fulfil(order_id)
    await r.finish("authorization_renewed_then_delivered")


async def authorization_renewal_refused(r: Recorder) -> None:
    order_id = await r.place(
        "authorization_renewal_wants_customer_cancelled",
        "capture at shipment, lapsed holds renewed: paid with a card that asks for "
        "authentication every time; the off-session renewal is refused "
        "(authentication_required), the order cancelled; grace over",
        renewing=True,
    )
    await r.first_run("authorization_renewal_wants_customer_cancelled")
    pi = await r.pay(order_id, THREE_D_SECURE, hold_seconds=_HOLD_S)
    intent = await r.intent(pi)
    await r.control(
        "/_vult/authenticate", {"client_secret": intent["client_secret"], "success": True}
    )
    await r.status(order_id, "Confirmed")
    await r.status(order_id, "Cancelled")
    await r.finish("authorization_renewal_wants_customer_cancelled")


async def capture_refused(r: Recorder) -> None:
    order_id = await r.place(
        "capture_refused_then_resolved",
        "capture at shipment: the authorization lapsed at Stripe; the ship's capture is "
        "refused (400, Processing, parked), then ops resolve it",
        at_shipment=True,
    )
    await r.first_run("capture_refused_then_resolved")
    pi = await r.pay(order_id, GOOD)
    await r.status(order_id, "Confirmed")
    await r.control(f"/_vult/payment_intents/{pi}/expire", {})
    assert (await r.ops(order_id, "processing")).status_code == 204
    answer = await r.ops(order_id, "ship", {"carrier": "UPS", "trackingNumber": "1Z3"})
    assert answer.status_code == 400, answer.text
    await r.attention(order_id, True)
    note = {"note": "Paid by bank transfer (corpus)"}
    assert (await r.ops(order_id, "resolve", note)).status_code == 204
    await r.attention(order_id, False)
    await r.save("capture_refused_then_resolved")  # stays Processing: saved as it stands


async def _terminated_then_resumed(r: Recorder, order_id: str, command: str) -> str:
    """Terminate the order's workflow (the Web UI's Terminate); a command then answers 503
    and resumes it: the new run's id, once it has caught up with Stripe."""
    handle = r.temporal.get_workflow_handle(f"order-{order_id}")
    await handle.terminate(reason="terminated for the corpus")
    if command in ("cancel", "payment"):
        answer = await r.api.post(f"/api/orders/{order_id}/{command}")
    else:
        answer = await r.ops(order_id, command)
    assert answer.status_code == 503, answer.text
    for _ in range(int(_WAIT_S / _POLL_S)):
        found = await handle.describe()
        if found.status is not None and found.status.name == "RUNNING":
            state = await handle.query("state")
            if state.get("resumes") and not state.get("catching_up"):
                return str(found.run_id)
        await asyncio.sleep(_POLL_S)
    raise AssertionError(f"order {order_id} was not resumed")


async def resumed_then_delivered(r: Recorder) -> None:
    order_id, _ = await r.paid("", "")
    run = await _terminated_then_resumed(r, order_id, "processing")
    r.begin(
        "resumed_paid_then_delivered",
        f"order-{order_id}@{run}",
        "paid, its workflow terminated; resumed by ops' processing (503), then fulfilled",
    )
    await r.fulfil(order_id)
    await r.finish("resumed_paid_then_delivered")


async def resumed_then_cancelled(r: Recorder) -> None:
    order_id, pi = await r.paid("", "")
    run = await _terminated_then_resumed(r, order_id, "cancel")
    r.begin(
        "resumed_paid_then_cancelled",
        f"order-{order_id}@{run}",
        "paid, its workflow terminated; resumed by the customer's cancel (503), which then "
        "refunds once; grace over",
    )
    answer = await r.cancel(order_id)
    assert answer.status_code == 204, answer.text
    await r.status(order_id, "Cancelled")
    await r.finish("resumed_paid_then_cancelled")


async def resumed_unpaid_expired(r: Recorder) -> None:
    order_id = await r.place("", "")
    await r.pay(order_id, None)
    run = await _terminated_then_resumed(r, order_id, "payment")
    r.begin(
        "resumed_unpaid_then_expired",
        f"order-{order_id}@{run}",
        "PaymentProcessing, its workflow terminated; resumed by a payment request (503); "
        "the payment window then closes: cancelled",
    )
    await r.status(order_id, "Cancelled")
    await r.finish("resumed_unpaid_then_expired")


# ---- order events' deliveries (1.1) ------------------------------------------------------

# A Standard Webhooks secret for the recording's own receiver (public, recording only).
RECEIVER_SECRET = "whsec_Y29ycHVzLXJlY29yZGluZy1yZWNlaXZlci1rZXktMDE="


class Receiver:
    """The shop's systems, for the recording: /ok answers 204, /flaky 503 to each event's
    first try then 204, /gone 410. A thread of its own on a free loopback port."""

    def __init__(self) -> None:
        import http.server

        seen: set[str] = set()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                self.rfile.read(int(self.headers.get("content-length") or 0))
                status = {"/ok": 204, "/gone": 410}.get(self.path, 204)
                event = str(self.headers.get("webhook-id"))
                if self.path == "/flaky" and event not in seen:
                    seen.add(event)  # each event's first try
                    status = 503
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.port = _free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def endpoints(self) -> str:
        def one(name: str, path: str, events: list[str]) -> dict[str, Any]:
            url = f"http://127.0.0.1:{self.port}{path}"
            return {"name": name, "url": url, "secret": RECEIVER_SECRET, "events": events}

        return json.dumps(
            [
                one("corpus-ok", "/ok", ["order.paid"]),
                one("corpus-flaky", "/flaky", ["order.delivered"]),
                one("corpus-gone", "/gone", ["order.cancelled"]),
            ]
        )


async def _event_of(r: Recorder, order_id: str, kind: str) -> str:
    """The id of the order's event of this kind, once written (its row change's)."""
    for _ in range(int(_WAIT_S / _POLL_S)):
        async with r.engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT event_id FROM order_events WHERE order_id = :o AND type = :t"),
                {"o": order_id, "t": kind},
            )
        if found:
            return str(found)
        await asyncio.sleep(_POLL_S)
    raise AssertionError(f"no {kind} event for order {order_id}")


async def event_delivered(r: Recorder) -> None:
    order_id, _ = await r.paid("", "")
    event = await _event_of(r, order_id, "order.paid")
    path = "event_delivered"
    r.begin(path, f"delivery-{event}-corpus-ok", "order.paid delivered at the first try")
    await r.finish(path)


async def event_delivered_after_a_failed_try(r: Recorder) -> None:
    order_id, _ = await r.paid("", "")
    await r.fulfil(order_id)
    event = await _event_of(r, order_id, "order.delivered")
    path = "event_delivered_after_a_failed_try"
    r.begin(path, f"delivery-{event}-corpus-flaky", "503, the wait, then delivered")
    await r.finish(path)


async def event_endpoint_gone_then_enabled(r: Recorder) -> None:
    order_id = await r.place("", "")
    assert (await r.cancel(order_id)).status_code == 204
    event = await _event_of(r, order_id, "order.cancelled")
    path = "event_endpoint_gone"
    r.begin(path, f"delivery-{event}-corpus-gone", "410: the endpoint disabled")
    await r.finish(path)
    enabled = await r.api.post("/api/ops/webhook-endpoints/corpus-gone/enable", headers=OPS)
    assert enabled.status_code == 204, enabled.text
    r.begin("endpoint_enabled", "enable-endpoint-corpus-gone", "ops turn the endpoint on")
    await r.finish("endpoint_enabled")


JOURNEYS: list[Journey] = [
    paid,
    paid_delivered,
    declined_then_paid,
    reconciled,
    cancelled_pending,
    cancelled_payment_processing,
    cancelled_failed,
    refunded,
    late_for_delivered,
    superseded_success,
    parked_then_retried,
    pending_cancel_finished,
    payment_window_expired,
    continued_as_new,
    dashboard_partial_refund,
    dashboard_full_refund,
    disputed_then_won,
    three_d_secure,
    window_waits,
    refund_after_close,
    events_together_after_close,
    cancel_mid_charge,
    failed_refund_resolved,
    resumed_then_delivered,
    resumed_then_cancelled,
    resumed_unpaid_expired,
    partly_shipped_then_returned,
    at_shipment_partly_shipped_then_returned,
    at_shipment_cancelled,
    authorization_lapsed,
    authorization_renewed,
    authorization_renewal_refused,
    shipment_repeated,
    captured_outside_then_partly_shipped,
    return_refund_failed,
    dispute_past_return_window,
    capture_refused,
    event_delivered,
    event_delivered_after_a_failed_try,
    event_endpoint_gone_then_enabled,
]


async def main(
    out: Path, database_url: str, temporal_address: str, stripe_base: str, release: str
) -> int:
    api_port = _free_port()
    receiver = Receiver()
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal_address,
            "TEMPORAL_TASK_QUEUE": f"corpus-{uuid.uuid4()}",
            "STRIPE_API_BASE": stripe_base,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "OPS_API_TOKEN": OPS_TOKEN,
            "WORKER_BUILD_ID": release,
            "WORKER_PROMOTE": "always",
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{_free_port()}",
            # Order events (1.1; an older tree ignores these): three endpoints, short tries.
            "WEBHOOK_ENDPOINTS": receiver.endpoints(),
            "DELIVERY_RETRY_DELAYS": "[1, 1, 2]",
            # Every journey at once through one API: no admission limit to shed them.
            "API_MAX_COMMANDS_IN_FLIGHT": "1000",
            **TIMING_ENV,
        }
    )
    os.environ.pop("PAYLOAD_ENCRYPTION_KEYS", None)
    from api.app import create_app  # the tree under test, from here on
    from vult.db.engine import make_engine
    from vult.process.settings import Settings
    from vult.process.stripe_client import make_stripe_client
    from vult.temporal.client import connect
    from worker import build_worker

    settings = Settings()
    temporal = await connect(settings)
    engine = make_engine(settings.database_url, pool_size=2)
    http = stripe.AIOHTTPClient()
    stripe_client = make_stripe_client(settings, http)
    refusal = Refusal()
    # A stand-in that answers as the StripeClient does (it wraps one), refusing on demand.
    refusing = cast(stripe.StripeClient, RefusingStripe(stripe_client, refusal))
    worker = build_worker(temporal, settings, engine, refusing)
    running = asyncio.create_task(worker.run())
    with contextlib.suppress(ImportError):  # releases before Worker Versioning have none
        from vult.temporal.deployments import set_current

        await set_current(temporal, settings.worker_deployment_name, settings.worker_build_id)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=api_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        await asyncio.sleep(0.05)
    api_url = f"http://127.0.0.1:{api_port}"
    # A second API placing orders under PAYMENT_CAPTURE=at_shipment (a release without it
    # places them as usual: its capture journeys then stop where they differ).
    shop_port = _free_port()
    at_shipment = settings.model_copy(update={"payment_capture": "at_shipment"})
    shop_server = uvicorn.Server(
        uvicorn.Config(
            create_app(at_shipment), host="127.0.0.1", port=shop_port, log_level="warning"
        )
    )
    threading.Thread(target=shop_server.run, daemon=True).start()
    # A third, renewing lapsed holds off-session (ON_AUTHORIZATION_EXPIRY=reauthorize).
    renewing_port = _free_port()
    renewing = at_shipment.model_copy(update={"on_authorization_expiry": "reauthorize"})
    renewing_server = uvicorn.Server(
        uvicorn.Config(
            create_app(renewing), host="127.0.0.1", port=renewing_port, log_level="warning"
        )
    )
    threading.Thread(target=renewing_server.run, daemon=True).start()
    for _ in range(400):
        if shop_server.started and renewing_server.started:
            break
        await asyncio.sleep(0.05)
    failed = 0
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=60) as api,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{shop_port}", timeout=60) as shop,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{renewing_port}", timeout=60) as renew,
    ):
        r = Recorder(out, api, stripe_client, temporal, engine, refusal, stripe_base, api_url)
        r.shop, r.renewing = shop, renew
        await r._register(f"{api_url}/api/webhooks/stripe")
        tasks = [
            asyncio.create_task(asyncio.wait_for(j(r), timeout=180), name=j.__name__)
            for j in JOURNEYS
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stops: dict[str, BaseException] = {}
        for journey, result in zip(JOURNEYS, results, strict=True):
            if isinstance(result, BaseException):
                failed += 1
                stops[journey.__name__] = result
                print(f"  FAILED {journey.__name__}: {result!r}", flush=True)
                traceback.print_exception(result, file=sys.stdout)
        # What a journey that stopped had done is still a history of this release.
        for path, (_, _, begun_by) in list(r.begun.items()):
            await r.save(path, stopped=stops.get(begun_by))
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "release": release,
                "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "paths": dict(sorted(r.recorded.items())),
            },
            indent=2,
        )
        + "\n"
    )
    server.should_exit = shop_server.should_exit = renewing_server.should_exit = True
    await worker.shutdown()
    await running
    await http.close_async()
    await engine.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    out_dir, db, temporal_at, stripe_at, release_name = sys.argv[1:6]
    code = asyncio.run(main(Path(out_dir), db, temporal_at, stripe_at, release_name))
    sys.stdout.flush()
    # Straight out: the SDK's runtime threads can crash an interpreter's finalization.
    os._exit(code)
