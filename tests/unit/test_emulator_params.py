"""The emulator's request parameters (dev/stack/stripe_params.py), checked against the pinned
SDK's params types as Stripe checks them: which type each endpoint takes, the tree of
parameters a type declares, and the check on bodies as the SDK sends them (no server)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import stripe
from stripe import params as sdk

from dev.stack.stripe_params import (
    UNCHECKED,
    Fields,
    FreeForm,
    Items,
    OneOf,
    Scalar,
    answer,
    nest,
    params_type,
    refusal,
    sdk_endpoints,
    shape,
    tree_of,
)

CREATE = ("POST", "/v1/payment_intents")
# What the service sends when it creates a PaymentIntent, form-encoded as the SDK sends it.
SERVICE_CREATE = [
    ("amount", "1200"),
    ("currency", "usd"),
    ("allowed_payment_method_types[0]", "card"),
    ("metadata[order_id]", "7b0c"),
    ("metadata[order_number]", "VLT-1001"),
    ("capture_method", "manual"),
]


def check(endpoint: tuple[str, str], pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    return answer(endpoint, nest(pairs))


def unknown(param: str) -> dict[str, str]:
    return {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": param,
        "message": f"Received unknown parameter: {param}",
    }


def missing(param: str) -> dict[str, str]:
    return {
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "param": param,
        "message": f"Missing required param: {param}.",
    }


@pytest.mark.parametrize(
    ("method", "path", "declared"),
    [
        ("POST", "/v1/payment_intents", sdk.PaymentIntentCreateParams),
        ("GET", "/v1/payment_intents/{id}", sdk.PaymentIntentRetrieveParams),
        ("POST", "/v1/payment_intents/{id}", sdk.PaymentIntentUpdateParams),
        ("POST", "/v1/payment_intents/{id}/confirm", sdk.PaymentIntentConfirmParams),
        ("POST", "/v1/payment_intents/{id}/cancel", sdk.PaymentIntentCancelParams),
        ("POST", "/v1/payment_intents/{id}/capture", sdk.PaymentIntentCaptureParams),
        ("POST", "/v1/refunds", sdk.RefundCreateParams),
        ("GET", "/v1/refunds", sdk.RefundListParams),
        ("GET", "/v1/refunds/{id}", sdk.RefundRetrieveParams),
        ("GET", "/v1/charges/{id}", sdk.ChargeRetrieveParams),
        ("GET", "/v1/disputes", sdk.DisputeListParams),
        ("POST", "/v1/customers", sdk.CustomerCreateParams),
        ("POST", "/v1/payment_methods", sdk.PaymentMethodCreateParams),
        ("POST", "/v1/payment_methods/{id}/attach", sdk.PaymentMethodAttachParams),
        ("GET", "/v1/webhook_endpoints", sdk.WebhookEndpointListParams),
        ("POST", "/v1/webhook_endpoints", sdk.WebhookEndpointCreateParams),
        ("GET", "/v1/events", sdk.EventListParams),
    ],
)
def test_each_endpoint_takes_the_params_type_of_the_sdk_method_that_requests_it(
    method: str, path: str, declared: type
) -> None:
    assert params_type(sdk_endpoints()[(method, shape(path))]) is declared


def test_routes_stripe_does_not_have_at_the_pinned_version_are_no_sdk_endpoints() -> None:
    """The emulator answers them 404, as Stripe answers an unrecognized URL."""
    for gone in [
        ("DELETE", "/v1/payment_intents/{}"),  # localstripe's DELETE on every kind
        ("GET", "/v1/invoices/upcoming"),  # removed at 2025-03-31.basil
        ("POST", "/v1/events"),
    ]:
        assert gone not in sdk_endpoints()


def test_every_v1_route_of_localstripe_is_an_sdk_endpoint_or_answered_not_found_or_unchecked() -> (
    None
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its handlers are not async
        from localstripe import server

    routes = {
        (route.method, shape(route.resource.canonical))
        for route in server.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v1/")
    }
    checked = routes & sdk_endpoints().keys()
    assert ("POST", "/v1/payment_intents/{}/confirm") in checked
    assert len(checked) > 60  # most of them: the check is not switched off by a bad reading
    # What is left unchecked is served by the emulator, has no SDK method, and says why.
    assert UNCHECKED.keys() <= routes - sdk_endpoints().keys()
    assert all(len(why) > 40 for why in UNCHECKED.values())


def test_the_tree_has_the_required_and_optional_params_of_the_type() -> None:
    tree = tree_of(sdk.PaymentIntentCreateParams)
    assert tree.required == {"amount", "currency"}
    assert {"metadata", "capture_method", "allowed_payment_method_types"} <= tree.fields.keys()
    assert "payment_method_types" not in tree.fields  # retired at endive
    apm = tree.fields["automatic_payment_methods"]
    assert isinstance(apm, Fields) and apm.required == {"enabled"}
    assert apm.fields.keys() == {"enabled", "allow_redirects"}


def test_request_options_are_not_params() -> None:
    tree = tree_of(sdk.PaymentIntentCreateParams)
    assert stripe.RequestOptions.__annotations__.keys().isdisjoint(tree.fields)
    assert "idempotency_key" not in tree.fields and "api_key" not in tree.fields


def test_free_form_hashes_lists_and_unsettable_params_are_told_apart() -> None:
    create = tree_of(sdk.PaymentIntentCreateParams)
    assert create.fields["metadata"] == FreeForm(Scalar())
    assert create.fields["expand"] == Items(Scalar())
    # Literal[''] | a hash: "" unsets it.
    assert tree_of(sdk.PaymentIntentUpdateParams).fields["metadata"] == OneOf(
        (Scalar(), FreeForm(Scalar()))
    )
    details = create.fields["amount_details"]
    assert isinstance(details, Fields)
    lines = details.fields["line_items"]  # Literal[''] | List[a TypedDict]
    assert isinstance(lines, OneOf)
    unset, listed = lines.members
    assert unset == Scalar() and isinstance(listed, Items) and isinstance(listed.item, Fields)
    assert {"product_name", "quantity", "unit_cost"} <= listed.item.required


def test_form_names_nest_as_the_sdk_encodes_them() -> None:
    assert nest(
        [
            ("amount", "1200"),
            ("metadata[order_id]", "7b0c"),
            ("expand[0]", "latest_charge"),
            ("expand[1]", "customer"),
            ("items[]", "a"),
            ("items[]", "b"),
            ("amount_details[line_items][0][product_name]", "Runner"),
        ]
    ) == {
        "amount": "1200",
        "metadata": {"order_id": "7b0c"},
        "expand": {"0": "latest_charge", "1": "customer"},
        "items": {"0": "a", "1": "b"},
        "amount_details": {"line_items": {"0": {"product_name": "Runner"}}},
    }


def test_what_the_service_sends_is_accepted() -> None:
    assert check(CREATE, SERVICE_CREATE) is None
    assert check(("POST", "/v1/payment_intents/{}/capture"), [("amount_to_capture", "700")]) is None
    assert check(("POST", "/v1/payment_intents/{}/confirm"), []) is None
    refund = [("payment_intent", "pi_1"), ("amount", "500"), ("metadata[order_id]", "7b0c")]
    assert check(("POST", "/v1/refunds"), refund) is None
    listing = [("payment_intent", "pi_1"), ("limit", "100"), ("expand[]", "data.charge")]
    assert check(("GET", "/v1/refunds"), listing) is None


def test_an_undeclared_param_is_refused_at_any_depth() -> None:
    assert check(CREATE, [*SERVICE_CREATE, ("bogus", "1")]) == unknown("bogus")
    nested = [*SERVICE_CREATE, ("automatic_payment_methods[bogus]", "1")]
    assert check(CREATE, nested) == unknown("automatic_payment_methods[bogus]")
    card = [("type", "card"), ("card[number]", "4242424242424242"), ("card[foo]", "x")]
    assert check(("POST", "/v1/payment_methods"), card) == unknown("card[foo]")
    line = "amount_details[line_items][0]"
    listed = [
        *SERVICE_CREATE,
        (f"{line}[product_name]", "Runner"),
        (f"{line}[quantity]", "1"),
        (f"{line}[unit_cost]", "1200"),
        (f"{line}[colour]", "red"),
    ]
    assert check(CREATE, listed) == unknown(f"{line}[colour]")


def test_a_free_form_hash_takes_any_key_but_only_values() -> None:
    assert check(CREATE, [*SERVICE_CREATE, ("metadata[anything]", "x")]) is None
    too_deep = [*SERVICE_CREATE, ("metadata[a][b]", "x")]
    assert check(CREATE, too_deep) == unknown("metadata[a][b]")


def test_a_hash_for_a_value_is_an_unknown_param() -> None:
    assert check(CREATE, [("amount[foo]", "1"), ("currency", "usd")]) == unknown("amount[foo]")


def test_a_value_for_a_hash_or_a_list_is_refused() -> None:
    flat = [*SERVICE_CREATE, ("automatic_payment_methods", "true")]
    assert check(CREATE, flat) == {
        "type": "invalid_request_error",
        "param": "automatic_payment_methods",
        "message": "Invalid object",
    }
    assert check(("GET", "/v1/refunds"), [("expand", "data.charge")]) == {
        "type": "invalid_request_error",
        "param": "expand",
        "message": "Invalid array",
    }


def test_an_empty_value_unsets_only_what_may_be_unset() -> None:
    update = ("POST", "/v1/payment_intents/{}")
    assert check(update, [("metadata", "")]) is None  # Literal[''] | Dict[str, str]
    assert check(CREATE, [*SERVICE_CREATE, ("amount_details[tax]", "")]) is None
    unset = [*SERVICE_CREATE, ("automatic_payment_methods", "")]
    assert check(CREATE, unset) is not None


def test_a_missing_required_param_is_refused_at_any_depth() -> None:
    assert check(CREATE, [("currency", "usd")]) == missing("amount")
    nested = [*SERVICE_CREATE, ("automatic_payment_methods[allow_redirects]", "never")]
    assert check(CREATE, nested) == missing("automatic_payment_methods[enabled]")
    assert check(("POST", "/v1/webhook_endpoints"), [("url", "https://x.example")]) == missing(
        "enabled_events"
    )


def test_an_unknown_param_is_named_before_a_missing_one() -> None:
    assert check(CREATE, [("currency", "usd"), ("bogus", "1")]) == unknown("bogus")


def test_a_json_body_is_checked_as_a_form_one() -> None:
    body: dict[str, Any] = {
        "amount": 1200,
        "currency": "usd",
        "allowed_payment_method_types": ["card"],
        "metadata": {"order_id": "7b0c"},
        "confirm": False,
    }
    tree = tree_of(sdk.PaymentIntentCreateParams)
    assert refusal(tree, body) is None
    assert refusal(tree, {**body, "expand": ["x", {"y": 1}]}) == unknown("expand[1][y]")


def test_payment_method_types_keeps_its_own_answer_on_a_payment_intent() -> None:
    for endpoint in [
        CREATE,
        ("POST", "/v1/payment_intents/{}"),
        ("POST", "/v1/payment_intents/{}/confirm"),
    ]:
        found = check(endpoint, [("payment_method_types[0]", "card"), ("bogus", "1")])
        assert found is not None
        assert (found["code"], found["param"]) == (
            "payment_method_types_no_longer_supported",
            "payment_method_types",
        )
    setup = check(("POST", "/v1/setup_intents"), [("payment_method_types[0]", "card")])
    assert setup == unknown("payment_method_types")
