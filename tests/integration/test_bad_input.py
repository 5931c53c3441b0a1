"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.integration import RUNNER, count_rows, order_body


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"lineItems": []}, ["Order must contain at least one line item"]),
        (
            {"lineItems": [{"productId": "00000000-0000-0000-0000-000000000001", "quantity": 1}]},
            ["Product not found: 00000000-0000-0000-0000-000000000001"],
        ),
        (
            {"lineItems": [{"productId": RUNNER, "quantity": 0}]},
            [f"Invalid quantity for product: {RUNNER}"],
        ),
        ({"customerEmail": "ann.example.com"}, ["customerEmail: must be a valid email address"]),
        ({"customerEmail": "ann@" + "b" * 250 + ".example.com"}, ["customerEmail: "]),
        (
            {"shippingAddress": {**order_body()["shippingAddress"], "country": "   "}},
            ["shippingAddress.country: is required"],
        ),
    ],
    ids=["no-items", "unknown-product", "zero-quantity", "bad-email", "long-email", "blank"],
)
async def test_an_invalid_order_is_refused_with_its_errors_and_writes_nothing(
    http: httpx.AsyncClient, engine: AsyncEngine, changes: dict, expected: list[str]
) -> None:
    before = await count_rows(engine)
    response = await http.post("/api/orders", json=order_body(**changes))
    assert response.status_code == 400
    errors = response.json()["errors"]
    # Each expected message (or, ending in ": ", message prefix) is among the errors.
    assert all(any(err.startswith(e) for err in errors) for e in expected), errors
    assert await count_rows(engine) == before


async def test_all_problems_of_one_order_are_listed_together(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await count_rows(engine)
    body = order_body(
        customerEmail="nope",
        lineItems=[
            {"productId": RUNNER, "quantity": -2},
            {"productId": "00000000-0000-0000-0000-0000000000aa", "quantity": 1},
        ],
    )
    body["shippingAddress"]["postalCode"] = "1" * 21
    del body["shippingAddress"]["city"]
    response = await http.post("/api/orders", json=body)
    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == sorted(
        [
            f"Invalid quantity for product: {RUNNER}",
            "Product not found: 00000000-0000-0000-0000-0000000000aa",
            "customerEmail: must be a valid email address",
            "shippingAddress.city: is required",
            "shippingAddress.postalCode: must be at most 20 characters",
        ]
    )
    assert await count_rows(engine) == before


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'"text"', b"", '{"customerEmail": "\xff"}'.encode("latin-1")],
    ids=["malformed", "array", "string", "empty", "not-utf8"],
)
async def test_a_body_that_is_not_an_order_gets_a_readable_400(
    http: httpx.AsyncClient, content: bytes
) -> None:
    response = await http.post(
        "/api/orders", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors and all(isinstance(e, str) and e for e in errors)


async def test_wrong_types_get_a_400_naming_the_fields(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/orders",
        json=order_body(lineItems=[{"productId": 42, "quantity": "two"}], shippingAddress=[]),
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "lineItems[0].quantity: must be a whole number" in errors
    assert "shippingAddress: must be an object" in errors


async def test_an_unknown_order_is_404(http: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    assert (await http.get(f"/api/orders/{missing}")).status_code == 404
    assert (await http.post(f"/api/orders/{missing}/payment")).status_code == 404


async def test_an_id_that_is_not_a_guid_is_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/orders/not-a-guid")
    assert response.status_code == 400
    assert "must be a GUID" in response.json()["error"]
