"""Hostile and malformed input: a clear 4xx, an answer within the bound, nothing written,
never a 5xx. Each case here once answered 500 or hung."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.integration import (
    CODEC_TOKEN,
    OPS,
    RUNNER,
    WEBHOOK_SECRET,
    count_rows,
    order_body,
    post_event,
)
from tests.support.stripe_signing import sign

ADDRESS = order_body()["shippingAddress"]


@pytest.mark.parametrize(
    "body,field",
    [
        (order_body(shippingAddress={**ADDRESS, "fullName": "Ann\u0000Lee"}), "fullName"),
        (order_body(shippingAddress={**ADDRESS, "city": "Spring\x07field"}), "city"),
        (
            order_body(lineItems=[{"productId": RUNNER, "quantity": 1, "size": "M\u0000"}]),
            "lineItems[0].size",
        ),
        (order_body(shippingAddress={**ADDRESS, "state": "I\ud800L"}), "state"),
    ],
    ids=["nul-in-name", "bell-in-city", "nul-in-size", "lone-surrogate"],
)
async def test_text_postgresql_cannot_store_is_refused_by_field_at_once(
    http: httpx.AsyncClient, engine: AsyncEngine, body: dict, field: str
) -> None:
    before = await count_rows(engine)
    started = time.monotonic()
    # json.dumps keeps a lone surrogate as the escape \ud800, as a hostile client sends it.
    response = await http.post(
        "/api/orders", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(field in e and "control characters" in e for e in errors), errors
    assert await count_rows(engine) == before


async def test_deeply_nested_json_is_a_400_not_a_crash(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await count_rows(engine)
    deep = "[" * 1000 + "]" * 1000
    for body in (
        deep,
        json.dumps({"customerEmail": "a@b.co", "x": json.loads("[" * 40 + "]" * 40)}),
    ):
        response = await http.post(
            "/api/orders", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "nests more than" in response.json()["errors"][0]
    assert await count_rows(engine) == before


async def test_an_order_no_payment_could_take_is_refused_at_placement(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await count_rows(engine)
    # 1000 x 129.99 x 100 lines, far above 999,999.99 USD.
    items = [{"productId": RUNNER, "quantity": 1000}] * 100
    response = await http.post("/api/orders", json=order_body(lineItems=items))
    assert response.status_code == 400
    assert "more than one payment can take (999999.99 USD)" in response.json()["errors"][0]
    assert await count_rows(engine) == before


@pytest.mark.parametrize(
    "query",
    ["customerEmail=a%00b", f"page={10**18}", "page=0", "pageSize=1000"],
)
async def test_the_ops_list_refuses_bad_paging_and_text_with_a_400(
    http: httpx.AsyncClient, query: str
) -> None:
    response = await http.get(f"/api/ops/orders?{query}", headers=OPS)
    assert response.status_code == 400
    assert response.json()["error"]


async def test_a_body_ops_routes_cannot_read_is_a_400_in_the_error_shape(
    http: httpx.AsyncClient,
) -> None:
    order_id = uuid.uuid4()
    for route in ("ship", "cancel"):
        response = await http.post(
            f"/api/ops/orders/{order_id}/{route}",
            content=b"{not json",
            headers={**OPS, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert set(response.json()) >= {"error"} and "detail" not in response.json()


async def test_an_unknown_route_answers_in_the_error_shape(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


@pytest.mark.parametrize(
    "payloads",
    [
        # A payload claiming our encoding with damaged ciphertext, and one naming a key id
        # this service does not hold.
        [
            {
                "metadata": {
                    "encoding": "YmluYXJ5L2VuY3J5cHRlZA==",
                    "encryption-key-id": "dGVzdC0y",
                },
                "data": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            }
        ],
        [
            {
                "metadata": {
                    "encoding": "YmluYXJ5L2VuY3J5cHRlZA==",
                    "encryption-key-id": "bm9wZQ==",
                },
                "data": "AAAA",
            }
        ],
    ],
    ids=["corrupt", "unknown-key"],
)
async def test_the_codec_refuses_what_it_cannot_decode_with_a_400(
    http: httpx.AsyncClient, payloads: list
) -> None:
    response = await http.post(f"/codec/{CODEC_TOKEN}/decode", json={"payloads": payloads})
    assert response.status_code == 400
    assert "could not be decoded" in response.json()["error"]


@pytest.mark.parametrize(
    "event",
    [
        {"id": "evt_1", "type": "payment_intent.succeeded", "data": None},
        {
            "id": "evt_2",
            "type": "payment_intent.succeeded",
            "data": {"object": {"object": "payment_intent", "id": "pi_x", "metadata": ["a"]}},
        },
        {"id": "evt_3", "type": "payment_intent.succeeded", "data": {"object": "text"}},
    ],
    ids=["data-null", "metadata-list", "object-not-an-object"],
)
async def test_a_signed_event_of_an_odd_shape_is_acknowledged_not_a_500(
    http: httpx.AsyncClient, event: dict
) -> None:
    payload = json.dumps(event).encode()
    response = await post_event(http, payload, sign(payload, secret=WEBHOOK_SECRET))
    assert response.status_code == 200, response.text


async def test_a_signed_body_that_is_no_event_is_a_400(http: httpx.AsyncClient) -> None:
    payload = b'{"type": 7}'
    response = await post_event(http, payload, sign(payload, secret=WEBHOOK_SECRET))
    assert response.status_code == 400
