"""CreateOrderHandlerTests (spec 8.1), validation part: every problem is listed at once."""

from __future__ import annotations

import copy
from typing import Any

from api.validation import NO_LINE_ITEMS, check_create_order, describe_errors

PRODUCT = "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001"
VALID: dict[str, Any] = {
    "customerEmail": "ann@example.com",
    "shippingAddress": {
        "fullName": "Ann Lee",
        "addressLine1": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "postalCode": "62701",
        "country": "US",
    },
    "lineItems": [{"productId": PRODUCT, "quantity": 2}],
}


def body(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    data.update(changes)
    return data


def test_a_valid_body_parses_with_no_problems() -> None:
    dto, problems = check_create_order(body(billingAddress=VALID["shippingAddress"]))
    assert problems == []
    assert dto is not None
    assert dto.line_items[0].quantity == 2
    assert dto.billing_address is not None and dto.billing_address.city == "Springfield"


def test_no_line_items_is_refused_in_the_seeds_words() -> None:
    assert check_create_order(body(lineItems=[]))[1] == [NO_LINE_ITEMS]
    data = body()
    del data["lineItems"]
    assert check_create_order(data)[1] == [NO_LINE_ITEMS]


def test_quantity_below_one_names_the_product() -> None:
    _, problems = check_create_order(body(lineItems=[{"productId": PRODUCT, "quantity": 0}]))
    assert problems == [f"Invalid quantity for product: {PRODUCT}"]


def test_every_problem_is_reported_together() -> None:
    data = body(customerEmail="not-an-email", lineItems=[{"productId": PRODUCT, "quantity": -1}])
    data["shippingAddress"] = {**VALID["shippingAddress"], "city": "x" * 101, "fullName": "  "}
    del data["shippingAddress"]["postalCode"]
    dto, problems = check_create_order(data)
    assert dto is None
    assert set(problems) == {
        f"Invalid quantity for product: {PRODUCT}",
        "customerEmail: must be a valid email address",
        "shippingAddress.city: must be at most 100 characters",
        "shippingAddress.fullName: is required",
        "shippingAddress.postalCode: is required",
    }


def test_wrong_types_are_described_not_crashed_on() -> None:
    _, problems = check_create_order(
        body(lineItems=[{"productId": "nope", "quantity": "2"}], shippingAddress="home")
    )
    assert "lineItems[0].productId: must be a GUID" in problems
    assert "lineItems[0].quantity: must be a whole number" in problems
    assert "shippingAddress: must be an object" in problems


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert check_create_order([1, 2])[1] == ["The request body must be a JSON object"]


def test_error_locations_read_as_json_paths() -> None:
    assert describe_errors([{"loc": ("body", "lineItems", 3, "size"), "type": "missing"}]) == [
        "lineItems[3].size: is required"
    ]


def test_quantity_above_the_most_names_the_product() -> None:
    _, problems = check_create_order(body(lineItems=[{"productId": PRODUCT, "quantity": 1001}]))
    assert problems == [f"Quantity for product {PRODUCT} must be at most 1000"]


def test_a_null_line_item_list_reads_as_none() -> None:
    assert check_create_order(body(lineItems=None))[1] == [NO_LINE_ITEMS]


def test_the_wire_model_declares_its_bounds_for_clients() -> None:
    """The rules live on the model, so the OpenAPI document shows them too."""
    from vult.wire.schemas import CreateOrderDto

    schema = CreateOrderDto.model_json_schema(by_alias=True)
    quantity = schema["$defs"]["CreateLineItemDto"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, 1000)
    assert schema["properties"]["lineItems"]["minItems"] == 1
