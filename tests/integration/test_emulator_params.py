"""The Stripe emulator refuses request parameters the pinned API version does not declare, as
Stripe does (dev/stack/stripe_params.py): each request the service makes passes through the
official SDK, and the same request with one undeclared parameter more is refused
`parameter_unknown`, so that the strictness cannot be switched off unnoticed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import stripe
from stripe.params import (
    CustomerCreateParams,
    PaymentIntentCreateParams,
    PaymentIntentRetrieveParams,
)

from tests.support.integration import GOOD_CARD, pay_with_card

KEY = "sk_test_x"
CARD_ONLY: list[tuple[str, str]] = [
    ("amount", "1200"),
    ("currency", "usd"),
    ("allowed_payment_method_types[0]", "card"),
]


@dataclass(frozen=True)
class Made:
    """What the service's requests made at the emulator."""

    intent: str
    charge: str
    refund: str
    cancelled: str


@pytest.fixture
async def client(stripe_api_base: str) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.AIOHTTPClient()
    yield stripe.StripeClient(KEY, base_addresses={"api": stripe_api_base}, http_client=http)
    await http.close_async()


@pytest.fixture
async def raw(stripe_api_base: str) -> AsyncIterator[httpx.AsyncClient]:
    """Requests sent as the SDK sends them (form-encoded, a secret key), but by hand: with
    parameters the SDK's types would not let a caller write."""
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=stripe_api_base, headers=headers) as http:
        yield http


async def intent_for(client: stripe.StripeClient, *, manual: bool = False) -> str:
    params = PaymentIntentCreateParams(
        amount=1200, currency="usd", allowed_payment_method_types=["card"]
    )
    if manual:  # as the service creates them, with the order in the metadata
        params["capture_method"] = "manual"
        params["metadata"] = {"order_id": "o-1", "order_number": "VLT-1001", "vult_owner": "t"}
    return (await client.v1.payment_intents.create_async(params=params)).id


async def what_the_service_does(client: stripe.StripeClient) -> Made:
    """One request of each kind the service makes (activities/stripe_payments.py,
    activities/order_resume.py, vult/process/stripe_setup.py), with its parameters."""
    pi = await intent_for(client, manual=True)
    # payment_methods create, payment_intents update and confirm, as Stripe.js does
    assert await pay_with_card(client, pi, GOOD_CARD) == "requires_capture"
    captured = await client.v1.payment_intents.capture_async(
        pi, params={"amount_to_capture": 700}, options={"idempotency_key": f"{pi}:capture"}
    )
    assert captured.status == "succeeded"
    found = (
        await client.v1.payment_intents.retrieve_async(
            pi, params=PaymentIntentRetrieveParams(expand=["latest_charge"])
        )
    ).to_dict()
    charge = found["latest_charge"]
    charge_id = charge["id"] if isinstance(charge, dict) else charge
    assert (await client.v1.charges.retrieve_async(charge_id)).id == charge_id
    refund = await client.v1.refunds.create_async(
        params={"payment_intent": pi, "amount": 100, "metadata": {"order_id": "o-1"}},
        options={"idempotency_key": f"{pi}:refund"},
    )
    listed = await client.v1.refunds.list_async(params={"payment_intent": pi, "limit": 100})
    assert [r.id for r in listed.data] == [refund.id]
    assert (await client.v1.refunds.retrieve_async(refund.id)).amount == 100
    disputes = await client.v1.disputes.list_async(params={"payment_intent": pi, "limit": 10})
    assert disputes.data == []
    await client.v1.webhook_endpoints.list_async(params={"limit": 100})
    unpaid = await intent_for(client)
    cancelled = await client.v1.payment_intents.cancel_async(unpaid)
    assert cancelled.status == "canceled"
    customer = await client.v1.customers.create_async(
        params=CustomerCreateParams(metadata={"order_id": "o-1"})
    )
    assert customer.id.startswith("cus_")
    return Made(pi, charge_id, refund.id, unpaid)


async def test_each_request_the_service_makes_is_refused_with_one_undeclared_param_more(
    client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    made = await what_the_service_does(client)
    pi, bogus = made.intent, ("not_at_this_version", "1")
    requests: list[tuple[str, str, list[tuple[str, str]]]] = [
        ("POST", "/v1/payment_intents", CARD_ONLY),
        ("GET", f"/v1/payment_intents/{pi}", [("expand[0]", "latest_charge")]),
        ("GET", "/v1/payment_intents", [("customer", "cus_x"), ("limit", "100")]),
        ("POST", f"/v1/payment_intents/{pi}", [("metadata[order_id]", "o-1")]),
        ("POST", f"/v1/payment_intents/{made.cancelled}/confirm", []),
        ("POST", f"/v1/payment_intents/{made.cancelled}/cancel", []),
        ("POST", f"/v1/payment_intents/{pi}/capture", [("amount_to_capture", "1")]),
        ("POST", "/v1/payment_methods", [("type", "card"), ("card[number]", GOOD_CARD)]),
        ("POST", "/v1/customers", [("metadata[order_id]", "o-1")]),
        ("POST", "/v1/refunds", [("payment_intent", pi), ("amount", "1")]),
        ("GET", "/v1/refunds", [("payment_intent", pi), ("limit", "100")]),
        ("GET", f"/v1/refunds/{made.refund}", []),
        ("GET", f"/v1/charges/{made.charge}", []),
        ("GET", "/v1/disputes", [("payment_intent", pi), ("limit", "10")]),
        ("GET", "/v1/webhook_endpoints", [("limit", "100")]),
    ]
    answers = {}
    for method, path, params in requests:
        sent = dict([*params, bogus])
        response = await (
            raw.get(path, params=sent) if method == "GET" else raw.post(path, data=sent)
        )
        answers[f"{method} {path}"] = (response.status_code, response.json()["error"])
    refused = {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": "not_at_this_version",
        "message": "Received unknown parameter: not_at_this_version",
    }
    assert answers == {f"{method} {path}": (400, refused) for method, path, _ in requests}
    # Refused before localstripe saw it: nothing was refunded, captured or cancelled.
    listed = await client.v1.refunds.list_async(params={"payment_intent": pi})
    assert [r.id for r in listed.data] == [made.refund]
    assert (await client.v1.payment_intents.retrieve_async(made.cancelled)).status == "canceled"


async def test_a_refused_request_is_not_saved_under_its_idempotency_key(
    client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    """Stripe: "If incoming parameters failed validation ... no idempotent result is saved";
    the same key with valid parameters then does the work."""
    pi = await intent_for(client)
    assert await pay_with_card(client, pi, GOOD_CARD) == "succeeded"
    key = {"Idempotency-Key": f"{pi}:refund"}
    refused = await raw.post(
        "/v1/refunds", data={"payment_intent": pi, "reason_why": "x"}, headers=key
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "parameter_unknown"
    refund = await client.v1.refunds.create_async(
        params={"payment_intent": pi}, options={"idempotency_key": key["Idempotency-Key"]}
    )
    assert refund.amount == 1200
    listed = await client.v1.refunds.list_async(params={"payment_intent": pi})
    assert [r.id for r in listed.data] == [refund.id]


async def test_a_declared_param_nested_wrong_is_refused_and_metadata_takes_any_key(
    client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    free_form = [*CARD_ONLY, ("metadata[any_key_at_all]", "x")]
    accepted = await raw.post("/v1/payment_intents", data=dict(free_form))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["metadata"] == {"any_key_at_all": "x"}

    nested = dict([*free_form, ("automatic_payment_methods[bogus]", "1")])
    refused = await raw.post("/v1/payment_intents", data=nested)
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": "automatic_payment_methods[bogus]",
        "message": "Received unknown parameter: automatic_payment_methods[bogus]",
    }
    too_deep = await raw.post(
        "/v1/payment_intents", data={**dict(CARD_ONLY), "metadata[a][b]": "x"}
    )
    assert too_deep.json()["error"]["param"] == "metadata[a][b]"


async def test_a_missing_required_param_is_refused(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/v1/payment_intents", data={"currency": "usd", "allowed_payment_method_types[0]": "card"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "param": "amount",
        "message": "Missing required param: amount.",
    }


async def test_payment_method_types_keeps_its_own_refusal(raw: httpx.AsyncClient) -> None:
    data = {"amount": "1200", "currency": "usd", "payment_method_types[0]": "card"}
    response = await raw.post("/v1/payment_intents", data=data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (
        "payment_method_types_no_longer_supported",
        "payment_method_types",
    )


async def test_a_route_stripe_does_not_have_is_not_found_and_our_own_routes_are_not_checked(
    client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    pi = await intent_for(client)
    gone = await raw.delete(f"/v1/payment_intents/{pi}")  # localstripe's, not Stripe's
    assert gone.status_code == 404
    assert gone.json()["error"]["message"].startswith(
        f"Unrecognized request URL (DELETE: /v1/payment_intents/{pi})"
    )
    assert (await client.v1.payment_intents.retrieve_async(pi)).status == "requires_payment_method"
    # The local stack's own routes are not Stripe's: not checked.
    script = await raw.get("/js.stripe.com/v3/", params={"not_a_stripe_param": "1"})
    assert script.status_code == 200 and "Stripe" in script.text
