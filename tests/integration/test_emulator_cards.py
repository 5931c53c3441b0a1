"""The emulator's saved cards are as strict as Stripe's at the pinned API version
(dev/stack/stripe_cards.py, dev/stack/stripe_capture.py), seen through the official SDK: a
card used without a Customer is spent, a saved card pays its customer's PaymentIntents only,
off-session confirmations decline the cards that want the customer, and an authorization
says when it ends and cannot be captured after."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe.params import (
    CustomerCreateParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    PaymentIntentRetrieveParams,
    PaymentMethodCreateParams,
)

from dev.stack.stripe_capture import CUSTOMER_INITIATED_HOLD, MERCHANT_INITIATED_HOLD
from tests.support.integration import GOOD_CARD, emulator_session, own_emulator

KEY = "sk_test_emulator"
ALWAYS_AUTHENTICATE = "4000002760003184"
AUTHENTICATE_UNLESS_SET_UP = "4000002500003155"
DAY = 86400


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One emulator for the module: each test makes its own customers and cards."""
    with own_emulator(tmp_path_factory.mktemp("cards") / "localstripe.log") as chosen:
        yield chosen


@pytest.fixture
async def client(port: int) -> AsyncIterator[stripe.StripeClient]:
    async with emulator_session(port) as session:
        yield session


async def card(client: stripe.StripeClient, number: str) -> str:
    """A card PaymentMethod, as Stripe.js makes it from what the customer typed."""
    method = await client.v1.payment_methods.create_async(
        params=PaymentMethodCreateParams(
            type="card", card={"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        )
    )
    return method.id


async def customer(client: stripe.StripeClient) -> str:
    return (await client.v1.customers.create_async(params=CustomerCreateParams())).id


async def pay(
    client: stripe.StripeClient,
    payment_method: str,
    *,
    customer: str | None = None,
    off_session: bool = False,
    manual: bool = False,
    save: bool = False,
    confirm: bool = True,
) -> stripe.PaymentIntent:
    """A PaymentIntent of 12.00 USD for `payment_method`, confirmed at once: off-session,
    for a manual capture, saving the card for later, as asked."""
    params = PaymentIntentCreateParams(
        amount=1200,
        currency="usd",
        allowed_payment_method_types=["card"],
        payment_method=payment_method,
        confirm=confirm,
    )
    if customer is not None:
        params["customer"] = customer
    if off_session:
        params["off_session"] = True
    if manual:
        params["capture_method"] = "manual"
    if save:
        params["setup_future_usage"] = "off_session"
    return await client.v1.payment_intents.create_async(params=params)


async def authenticate(port: int, intent: stripe.PaymentIntent) -> dict[str, Any]:
    """The customer passes the 3-D Secure challenge, as in the Stripe.js stand-in."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        answer = await http.post(
            "/_vult/authenticate",
            json={"key": "pk_test_x", "client_secret": intent.client_secret, "success": True},
        )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def saved(client: stripe.StripeClient, port: int, number: str) -> tuple[str, str]:
    """A customer and their card, saved for off-session payments during a first payment
    the customer authenticated if the card asked: (customer, payment method)."""
    who, method = await customer(client), await card(client, number)
    first = await pay(client, method, customer=who, save=True)
    if first.status == "requires_action":
        assert (await authenticate(port, first))["status"] == "succeeded"
    else:
        assert first.status == "succeeded"
    return who, method


async def hold_end(client: stripe.StripeClient, intent: str) -> int:
    found = await client.v1.payment_intents.retrieve_async(
        intent, params=PaymentIntentRetrieveParams(expand=["latest_charge"])
    )
    ends = found.to_dict()["latest_charge"]["payment_method_details"]["card"]["capture_before"]
    assert isinstance(ends, int)
    return ends


async def control(port: int, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        return await http.post(path, json=body, headers={"Authorization": f"Bearer {KEY}"})


async def test_a_customer_is_created_with_what_the_service_sends_and_lists_its_payments(
    client: stripe.StripeClient,
) -> None:
    made = await client.v1.customers.create_async(
        params=CustomerCreateParams(
            email="ann@example.com",
            name="Ann Lee",
            description="Order 1001",
            metadata={"order_id": "o-1"},
        )
    )
    found = await client.v1.customers.retrieve_async(made.id)
    assert (found.email, found.name, found.description) == (
        "ann@example.com",
        "Ann Lee",
        "Order 1001",
    )
    assert found.to_dict()["metadata"] == {"order_id": "o-1"}
    theirs = await pay(client, await card(client, GOOD_CARD), customer=made.id)
    await pay(client, await card(client, GOOD_CARD))  # nobody's
    listed = await client.v1.payment_intents.list_async(params={"customer": made.id})
    assert [i.id for i in listed.data] == [theirs.id]


async def test_a_card_used_without_a_customer_cannot_pay_or_be_saved_again(
    client: stripe.StripeClient,
) -> None:
    method = await card(client, GOOD_CARD)
    assert (await pay(client, method)).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as again:
        await pay(client, method)
    assert again.value.param == "payment_method"
    assert "It may not be used again" in str(again.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as saving:
        await client.v1.payment_methods.attach_async(
            method, params={"customer": await customer(client)}
        )
    assert "may not be used again" in str(saving.value.user_message)


async def test_a_saved_card_pays_off_session_for_its_customer_only(
    client: stripe.StripeClient, port: int
) -> None:
    who, method = await saved(client, port, GOOD_CARD)
    assert (await client.v1.payment_methods.retrieve_async(method)).customer == who

    later = await pay(client, method, customer=who, off_session=True, manual=True)
    assert later.status == "requires_capture"
    # Merchant-initiated: Visa holds it 4 days 18 hours, not the 7 days of the first payment.
    assert abs(await hold_end(client, later.id) - (time.time() + MERCHANT_INITIATED_HOLD)) < 60

    stranger = await customer(client)
    with pytest.raises(stripe.InvalidRequestError) as other:
        await pay(client, method, customer=stranger)
    assert "does not belong to the Customer you supplied" in str(other.value.user_message)
    made = await client.v1.payment_intents.list_async(params={"customer": stranger})
    assert made.data == []  # refused before any PaymentIntent was made
    with pytest.raises(stripe.InvalidRequestError) as nobody:
        await pay(client, method)
    assert "Please include the Customer" in str(nobody.value.user_message)


async def test_off_session_is_taken_on_confirm_and_only_with_confirm_on_create(
    client: stripe.StripeClient, port: int
) -> None:
    who, method = await saved(client, port, GOOD_CARD)
    open_one = await client.v1.payment_intents.create_async(
        params=PaymentIntentCreateParams(
            amount=500,
            currency="usd",
            allowed_payment_method_types=["card"],
            customer=who,
            payment_method=method,
        )
    )
    confirmed = await client.v1.payment_intents.confirm_async(
        open_one.id, params=PaymentIntentConfirmParams(off_session=True)
    )
    assert confirmed.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await pay(client, method, customer=who, off_session=True, confirm=False)
    assert refused.value.param == "off_session"


async def test_a_saved_card_that_always_wants_authentication_is_declined_off_session(
    client: stripe.StripeClient, port: int
) -> None:
    who, method = await saved(client, port, ALWAYS_AUTHENTICATE)
    with pytest.raises(stripe.CardError) as declined:
        await pay(client, method, customer=who, off_session=True)
    assert declined.value.http_status == 402
    assert declined.value.code == "authentication_required"
    error = declined.value.error
    assert error is not None and error.decline_code == "authentication_required"
    assert error.payment_intent is not None
    pi = error.payment_intent.id

    found = (await client.v1.payment_intents.retrieve_async(pi)).to_dict()
    assert found["status"] == "requires_payment_method"
    assert found["last_payment_error"]["code"] == "authentication_required"
    assert found["last_payment_error"]["payment_method"]["id"] == method
    failed = await client.v1.events.list_async(
        params={"type": "payment_intent.payment_failed", "limit": 100}
    )
    assert pi in [e.data.object["id"] for e in failed.data]

    # The customer comes back: on-session, the same saved card is asked to authenticate.
    await client.v1.payment_intents.update_async(pi, params={"payment_method": method})
    assert (await client.v1.payment_intents.confirm_async(pi)).status == "requires_action"


async def test_card_3155_needs_no_authentication_off_session_once_set_up_with_it(
    client: stripe.StripeClient, port: int
) -> None:
    who, method = await saved(client, port, AUTHENTICATE_UNLESS_SET_UP)
    later = await pay(client, method, customer=who, off_session=True, manual=True)
    assert later.status == "requires_capture"
    on_session = await pay(client, method, customer=who)
    assert on_session.status == "requires_action"  # present, the customer always is asked

    # Attached only (no payment set it up for later): off-session, the bank still asks.
    other, attached = await customer(client), await card(client, AUTHENTICATE_UNLESS_SET_UP)
    await client.v1.payment_methods.attach_async(attached, params={"customer": other})
    with pytest.raises(stripe.CardError) as declined:
        await pay(client, attached, customer=other, off_session=True)
    assert declined.value.code == "authentication_required"


async def test_an_authorization_says_when_it_ends_and_cannot_be_captured_after(
    client: stripe.StripeClient, port: int
) -> None:
    async def authorized() -> str:
        held = await pay(client, await card(client, GOOD_CARD), manual=True)
        assert held.status == "requires_capture"
        return held.id

    kept = await authorized()
    assert abs(await hold_end(client, kept) - (time.time() + CUSTOMER_INITIATED_HOLD)) < 60
    assert CUSTOMER_INITIATED_HOLD == 7 * DAY
    aged = await control(port, f"/_vult/payment_intents/{kept}/age", {"seconds": 6 * DAY})
    assert aged.status_code == 200 and aged.json()["status"] == "requires_capture"
    assert (await client.v1.payment_intents.capture_async(kept)).status == "succeeded"

    lapsed = await authorized()
    aged = await control(port, f"/_vult/payment_intents/{lapsed}/age", {"seconds": 7 * DAY})
    assert aged.status_code == 200 and aged.json()["status"] == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.capture_async(lapsed)
