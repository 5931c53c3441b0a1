"""The Stripe emulator keeps idempotency keys as Stripe does (dev/stack/stripe_idempotency.py),
seen through the official SDK: a 5xx is saved and replayed, a key reused for another request
is refused, a key 24 hours old is new again, and saved answers outlive a restart. The test
controls (ageing keys, failing the next requests) are sent as raw HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

from dev.stack.procs import Children, free_port
from dev.stack.stripe_emulator import start_localstripe
from tests.support.integration import GOOD_CARD, THREE_D_SECURE_CARD, pay_with_card

KEY = "sk_test_emulator"
OTHER_ACCOUNT = "sk_test_other_account"
HOURS = 3600
PARAMS = PaymentIntentCreateParams(
    amount=1200, currency="usd", allowed_payment_method_types=["card"]
)
MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were first "
    "used with. Try using a key other than '{key}' if you meant to execute a different request."
)


@dataclass
class Emulator:
    port: int
    state: Path
    logs: Path
    children: Children
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = self.logs / f"localstripe-{self.starts}.log"
        start_localstripe(self.children, port=self.port, log=log, state_file=self.state)

    def restart(self) -> None:
        self.children.stop_all()
        self.start()

    def client(self, http: stripe.HTTPClient, key: str = KEY) -> stripe.StripeClient:
        return stripe.StripeClient(
            key,
            base_addresses={"api": f"http://127.0.0.1:{self.port}"},
            http_client=http,
            max_network_retries=0,  # each retry here is the test's own
        )

    async def control(self, path: str, body: dict[str, Any], key: str = KEY) -> Any:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            answer = await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        answer.raise_for_status()
        return answer.json()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    running = Emulator(free_port(), tmp_path / "localstripe.pickle", tmp_path, Children())
    try:
        running.start()
        yield running
    finally:
        running.children.stop_all()


@pytest.fixture
async def http() -> AsyncIterator[stripe.HTTPClient]:
    made = stripe.AIOHTTPClient()
    yield made
    await made.close_async()


@pytest.fixture
def client(emulator: Emulator, http: stripe.HTTPClient) -> stripe.StripeClient:
    return emulator.client(http)


def replayed(exc: stripe.StripeError) -> bool:
    headers = {name.lower(): value for name, value in (exc.headers or {}).items()}
    return headers.get("idempotent-replayed") == "true"


async def create_intent(
    client: stripe.StripeClient, key: str, params: PaymentIntentCreateParams = PARAMS
) -> stripe.PaymentIntent:
    return await client.v1.payment_intents.create_async(
        params=params, options={"idempotency_key": key}
    )


async def test_a_500_is_saved_under_its_key_and_replayed_to_every_retry(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    await emulator.control("/_vult/fail_next", {"path": "/v1/payment_intents", "status": 500})
    with pytest.raises(stripe.APIError) as first:
        await create_intent(client, "create-1")
    assert first.value.http_status == 500
    assert not replayed(first.value)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as retry:
            await create_intent(client, "create-1")
        assert retry.value.http_status == 500
        assert retry.value.json_body == first.value.json_body
        assert replayed(retry.value)
    made = await create_intent(client, "create-2")  # the failure was armed once
    listed = await client.v1.payment_intents.list_async()
    assert [i.id for i in listed.data] == [made.id]  # the 500 made nothing


async def test_a_refund_done_before_its_answer_was_lost_stays_and_only_a_new_key_repeats_it(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    """Stripe did the work, then answered 500: the key replays the 500 for ever, and a new
    key makes a second refund. A caller must read what exists before retrying anew."""
    intent = await create_intent(client, "intent")
    assert await pay_with_card(client, intent.id, GOOD_CARD) == "succeeded"
    arm = {"path": "/v1/refunds", "status": 500, "count": 1, "after": True}
    await emulator.control("/_vult/fail_next", arm)
    params = RefundCreateParams(payment_intent=intent.id, amount=300)

    async def refunds() -> list[str]:
        listed = await client.v1.refunds.list_async(params={"payment_intent": intent.id})
        return [r.id for r in listed.data]

    with pytest.raises(stripe.APIError) as lost:
        await client.v1.refunds.create_async(params=params, options={"idempotency_key": "r-1"})
    assert lost.value.http_status == 500
    done = await refunds()
    assert len(done) == 1
    with pytest.raises(stripe.APIError) as retry:
        await client.v1.refunds.create_async(params=params, options={"idempotency_key": "r-1"})
    assert retry.value.http_status == 500 and replayed(retry.value)
    assert await refunds() == done
    second = await client.v1.refunds.create_async(params=params, options={"idempotency_key": "r-2"})
    assert sorted(await refunds()) == sorted([*done, second.id])


async def test_a_key_sent_again_for_another_request_is_refused(
    client: stripe.StripeClient,
) -> None:
    first = await create_intent(client, "order-1")
    other = PaymentIntentCreateParams(
        amount=1300, currency="usd", allowed_payment_method_types=["card"]
    )
    with pytest.raises(stripe.IdempotencyError) as refused:
        await create_intent(client, "order-1", other)
    assert refused.value.http_status == 400
    assert refused.value.error is not None
    assert refused.value.error.type == "idempotency_error"
    assert refused.value.user_message == MISMATCH.format(key="order-1")
    with pytest.raises(stripe.IdempotencyError):  # same key, another endpoint
        await client.v1.customers.create_async(options={"idempotency_key": "order-1"})
    again = await create_intent(client, "order-1")
    assert again.id == first.id


async def test_a_request_refused_as_invalid_saves_nothing_under_its_key(
    client: stripe.StripeClient,
) -> None:
    """Stripe saves no answer for invalid parameters: the corrected request may reuse the key."""
    invalid = PaymentIntentCreateParams(
        amount=-5, currency="usd", allowed_payment_method_types=["card"]
    )
    with pytest.raises(stripe.InvalidRequestError):
        await create_intent(client, "order-2", invalid)
    made = await create_intent(client, "order-2")
    assert made.last_response is not None
    assert made.last_response.headers.get("Idempotent-Replayed") is None


async def test_a_key_older_than_24_hours_is_new_again_for_its_account_only(
    emulator: Emulator, client: stripe.StripeClient, http: stripe.HTTPClient
) -> None:
    first = await create_intent(client, "daily")
    other_client = emulator.client(http, OTHER_ACCOUNT)
    others = await create_intent(other_client, "daily")
    assert others.id != first.id  # keys are per account

    await emulator.control("/_vult/idempotency/age", {"seconds": 23 * HOURS})
    assert (await create_intent(client, "daily")).id == first.id
    aged = await emulator.control("/_vult/idempotency/age", {"seconds": 2 * HOURS})
    assert aged == {"aged": 1}

    renewed = await create_intent(client, "daily")
    assert renewed.id not in (first.id, others.id)
    assert renewed.last_response is not None
    assert renewed.last_response.headers.get("Idempotent-Replayed") is None
    assert (await create_intent(client, "daily")).id == renewed.id
    assert (await create_intent(other_client, "daily")).id == others.id


async def test_saved_answers_and_saved_500s_survive_a_restart(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    await emulator.control("/_vult/fail_next", {"path": "/v1/payment_intents", "status": 503})
    with pytest.raises(stripe.APIError):
        await create_intent(client, "failed")
    made = await create_intent(client, "made")
    emulator.restart()

    fresh = stripe.AIOHTTPClient()  # the first one's connections died with the emulator
    try:
        client = emulator.client(fresh)
        with pytest.raises(stripe.APIError) as failed:
            await create_intent(client, "failed")
        assert failed.value.http_status == 503 and replayed(failed.value)
        assert (await create_intent(client, "made")).id == made.id
        other = PaymentIntentCreateParams(
            amount=1, currency="usd", allowed_payment_method_types=["card"]
        )
        with pytest.raises(stripe.IdempotencyError):
            await create_intent(client, "made", other)
    finally:
        await fresh.close_async()


async def test_a_3d_secure_challenge_answered_survives_a_restart(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    """What the stand-in Stripe.js routes change is saved before they answer, as every
    other write is: a challenge answered just before the emulator died stays answered."""
    intent = await create_intent(client, "three-d-secure")
    assert await pay_with_card(client, intent.id, THREE_D_SECURE_CARD) == "requires_action"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{emulator.port}") as http:
        answer = await http.post(
            "/_vult/authenticate",
            content=json.dumps(
                {"client_secret": intent.client_secret, "success": True, "key": "pk_test_x"}
            ),
        )
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded", answer.text
    emulator.restart()

    fresh = stripe.AIOHTTPClient()
    try:
        found = await emulator.client(fresh).v1.payment_intents.retrieve_async(intent.id)
        assert found.status == "succeeded"
    finally:
        await fresh.close_async()
