"""The local stack's Stripe emulator (dev/stack/localstripe_server.py): with a state file its
objects (disputes included) survive a restart, lists (a charge's refunds) read what the
store holds, and it lists its webhook endpoints as Stripe does, for the set-up job's check."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import stripe
from stripe.params import PaymentIntentCreateParams

from dev.stack.procs import Children, free_port
from dev.stack.stripe_emulator import start_localstripe
from tests.support.integration import GOOD_CARD, emulator_client, pay_with_card
from vult.domain.stripe_events import PAYMENT_INTENT_EVENTS, REQUIRED
from vult.process.stripe_setup import missing_webhook_events


async def test_refunds_are_listed_and_survive_a_restart(tmp_path: Path) -> None:
    state, port = tmp_path / "localstripe.pickle", free_port()
    children = Children()
    http = stripe.AIOHTTPClient()
    try:
        start_localstripe(children, port=port, log=tmp_path / "one.log", state_file=state)
        client = emulator_client(port, http)
        intent = await client.v1.payment_intents.create_async(
            params=PaymentIntentCreateParams(
                amount=1200, currency="usd", allowed_payment_method_types=["card"]
            )
        )
        assert await pay_with_card(client, intent.id, GOOD_CARD) == "succeeded"
        refund = await client.v1.refunds.create_async(params={"payment_intent": intent.id})
        children.stop_all()

        start_localstripe(children, port=port, log=tmp_path / "two.log", state_file=state)
        listed = await client.v1.refunds.list_async(params={"payment_intent": intent.id})
        assert [r.id for r in listed.data] == [refund.id]
        again = await client.v1.payment_intents.retrieve_async(intent.id)
        assert again.status == "succeeded"
    finally:
        children.stop_all()
        await http.close_async()


async def test_an_idempotency_key_sent_again_gets_the_first_answer_even_after_a_restart(
    tmp_path: Path,
) -> None:
    """As Stripe does: a retried create with its key makes nothing new. Without this, a
    worker that dies after Stripe answered makes a second PaymentIntent on its retry."""
    state, port = tmp_path / "localstripe.pickle", free_port()
    children = Children()
    http = stripe.AIOHTTPClient()
    params = PaymentIntentCreateParams(
        amount=1200, currency="usd", allowed_payment_method_types=["card"]
    )
    try:
        start_localstripe(children, port=port, log=tmp_path / "one.log", state_file=state)
        client = emulator_client(port, http)
        first = await client.v1.payment_intents.create_async(
            params=params, options={"idempotency_key": "order-1-payment-1"}
        )
        same = await client.v1.payment_intents.create_async(
            params=params, options={"idempotency_key": "order-1-payment-1"}
        )
        other = await client.v1.payment_intents.create_async(
            params=params, options={"idempotency_key": "order-1-payment-2"}
        )
        assert same.id == first.id
        assert other.id != first.id
        assert same.last_response is not None
        assert same.last_response.headers.get("Idempotent-Replayed") == "true"
        assert await pay_with_card(client, first.id, GOOD_CARD) == "succeeded"
        refund = await client.v1.refunds.create_async(
            params={"payment_intent": first.id}, options={"idempotency_key": "refund-1"}
        )
        children.stop_all()

        start_localstripe(children, port=port, log=tmp_path / "two.log", state_file=state)
        await http.close_async()
        http = stripe.AIOHTTPClient()
        client = emulator_client(port, http)
        again = await client.v1.refunds.create_async(
            params={"payment_intent": first.id}, options={"idempotency_key": "refund-1"}
        )
        assert again.id == refund.id
        listed = await client.v1.refunds.list_async(params={"payment_intent": first.id})
        assert [r.id for r in listed.data] == [refund.id]
        without_key = await client.v1.payment_intents.create_async(params=params)
        assert without_key.id not in (first.id, other.id)
    finally:
        children.stop_all()
        await http.close_async()


async def test_a_dispute_of_card_0259_opens_and_survives_a_restart(tmp_path: Path) -> None:
    state, port = tmp_path / "localstripe.pickle", free_port()
    children = Children()
    http = stripe.AIOHTTPClient()
    try:
        start_localstripe(children, port=port, log=tmp_path / "one.log", state_file=state)
        client = emulator_client(port, http)
        intent = await client.v1.payment_intents.create_async(
            params=PaymentIntentCreateParams(
                amount=1200, currency="usd", allowed_payment_method_types=["card"]
            )
        )
        assert await pay_with_card(client, intent.id, "4000000000000259") == "succeeded"
        listed = None
        for _ in range(50):  # it opens a moment after the success, as in Stripe's test mode
            listed = await client.v1.disputes.list_async(params={"payment_intent": intent.id})
            if listed.data:
                break
            await asyncio.sleep(0.1)
        assert listed is not None and len(listed.data) == 1
        dispute = listed.data[0]
        assert (dispute.status, dispute.amount) == ("needs_response", 1200)
        # A charged-back charge cannot be refunded, as at Stripe (charge_disputed); the
        # request is a write, so the emulator saves its store.
        with pytest.raises(stripe.InvalidRequestError, match="charged back"):
            await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 1})
        children.stop_all()

        start_localstripe(children, port=port, log=tmp_path / "two.log", state_file=state)
        again = await client.v1.disputes.retrieve_async(dispute.id)
        assert again.payment_intent == intent.id and again.status == "needs_response"
    finally:
        children.stop_all()
        await http.close_async()


async def test_the_setup_check_names_the_webhook_events_an_endpoint_lacks(tmp_path: Path) -> None:
    port = free_port()
    children = Children()
    http = stripe.AIOHTTPClient()
    url = "https://shop.example/api/webhooks/stripe"
    try:
        start_localstripe(children, port=port, log=tmp_path / "stripe.log", state_file=None)
        client = emulator_client(port, http)
        (nothing, *_) = await missing_webhook_events(client, url)
        assert nothing.startswith("(no enabled webhook endpoint")
        # Subscribed as docs/operations.md once said: PaymentIntents and charge.refunded.
        partial = sorted(PAYMENT_INTENT_EVENTS | {"charge.refunded"})
        register(port, "shop", url, partial)
        missing = await missing_webhook_events(client, url)
        assert missing == sorted(REQUIRED - set(partial))
        assert "charge.dispute.created" in missing and "charge.refund.updated" in missing
        register(port, "shop", url, sorted(REQUIRED))
        assert await missing_webhook_events(client, url) == []
        assert await missing_webhook_events(client, "") == []  # found by its path
    finally:
        children.stop_all()
        await http.close_async()


def register(port: int, name: str, url: str, events: list[str]) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/_config/webhooks/{name}",
        json={"url": url, "secret": "whsec_x", "events": events},
        timeout=10,
    )
    response.raise_for_status()


async def test_manual_capture_takes_part_and_releases_the_rest_as_stripe_does(
    tmp_path: Path,
) -> None:
    port, children, http = free_port(), Children(), stripe.AIOHTTPClient()
    try:
        start_localstripe(children, port=port, log=tmp_path / "capture.log", state_file=None)
        client = emulator_client(port, http)

        async def authorized() -> str:
            intent = await client.v1.payment_intents.create_async(
                params=PaymentIntentCreateParams(
                    amount=1200,
                    currency="usd",
                    allowed_payment_method_types=["card"],
                    capture_method="manual",
                )
            )
            assert await pay_with_card(client, intent.id, GOOD_CARD) == "requires_capture"
            return intent.id

        pi = await authorized()
        found = (await client.v1.payment_intents.retrieve_async(pi)).to_dict()
        assert (found["amount_capturable"], found["amount_received"]) == (1200, 0)
        captured = await client.v1.payment_intents.capture_async(
            pi, params={"amount_to_capture": 700}
        )
        assert captured.status == "succeeded"
        found = (await client.v1.payment_intents.retrieve_async(pi)).to_dict()
        charge = (await client.v1.charges.retrieve_async(found["latest_charge"]["id"])).to_dict()
        assert (found["amount_capturable"], found["amount_received"]) == (0, 700)
        assert charge["amount_captured"] == 700
        listed = await client.v1.refunds.list_async(params={"payment_intent": pi})
        assert listed.data == []  # the rest released, not refunded
        with pytest.raises(stripe.InvalidRequestError):  # captured once only
            await client.v1.payment_intents.capture_async(pi)

        # The authorization lapses (the test control): a capture is refused.
        lapsing = await authorized()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as control:
            answer = await control.post(
                f"/_vult/payment_intents/{lapsing}/expire",
                headers={"Authorization": "Bearer sk_test_emulator"},
            )
        assert answer.status_code == 200 and answer.json()["status"] == "canceled"
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.payment_intents.capture_async(lapsing)
    finally:
        children.stop_all()
        await http.close_async()
