"""The emulator's idempotency keys (dev/stack/stripe_idempotency.py) as Stripe keeps them:
what counts as the same request, which answers are saved, when a key is forgotten; and the
middleware itself on a stand-in endpoint, where a request can be held mid-flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from localstripe.errors import UserError

from dev.stack.stripe_idempotency import (
    KIND,
    Saved,
    age_account,
    began_execution,
    forget_expired,
    live,
    request_fingerprint,
)
from dev.stack.stripe_idempotency import install as install_idempotency

FORM = "application/x-www-form-urlencoded"
ACCOUNT_A = {"Authorization": "Bearer sk_test_a"}


def fingerprint(body: str, path: str = "/v1/refunds", content_type: str = FORM) -> str:
    return request_fingerprint("POST", path, content_type, body.encode())


def saved(at: float) -> Saved:
    return Saved(200, b"{}", at, "request")


def error_body(**error: Any) -> bytes:
    return json.dumps({"error": error}).encode()


def test_the_same_parameters_in_another_order_are_the_same_request() -> None:
    assert fingerprint("amount=300&payment_intent=pi_1") == fingerprint(
        "payment_intent=pi_1&amount=300"
    )


def test_another_value_path_or_list_order_is_another_request() -> None:
    first = fingerprint("amount=300&payment_intent=pi_1&expand[]=a&expand[]=b")
    assert fingerprint("amount=301&payment_intent=pi_1&expand[]=a&expand[]=b") != first
    assert fingerprint("amount=300&payment_intent=pi_1&expand[]=b&expand[]=a") != first
    assert (
        fingerprint("amount=300&payment_intent=pi_1&expand[]=a&expand[]=b", "/v1/customers")
        != first
    )


def test_a_json_body_is_compared_parsed() -> None:
    one = fingerprint('{"b": 1, "a": [1, 2]}', content_type="application/json")
    assert one == fingerprint('{"a":[1,2],"b":1}', content_type="application/json")
    assert one != fingerprint('{"a":[2,1],"b":1}', content_type="application/json")


@pytest.mark.parametrize(
    ("status", "body", "kept"),
    [
        (200, b'{"id": "re_1"}', True),
        (402, error_body(type="card_error", code="card_declined"), True),
        (404, error_body(type="invalid_request_error", message="No such charge"), True),
        (400, error_body(type="invalid_request_error", code="charge_already_refunded"), True),
        (500, error_body(type="api_error", message="An unknown error occurred"), True),
        (503, b"not json", True),
        (400, error_body(type="invalid_request_error", code="parameter_missing"), False),
        (400, error_body(type="invalid_request_error", code="parameters_exclusive"), False),
        (400, error_body(type="invalid_request_error", message="Bad request"), False),
        (401, error_body(type="invalid_request_error", message="Unauthorized"), False),
        (429, error_body(type="invalid_request_error", code="rate_limit"), False),
    ],
)
def test_only_answers_of_an_endpoint_that_began_executing_are_saved(
    status: int, body: bytes, kept: bool
) -> None:
    assert began_execution(status, body) is kept


def test_a_saved_answer_lives_its_lifetime_and_no_longer() -> None:
    assert live(saved(1000.0), lifetime=60.0, now=1060.0) == saved(1000.0)
    assert live(saved(1000.0), lifetime=60.0, now=1060.5) is None
    assert live((200, b"{}", 1059.0), lifetime=60.0, now=1060.0) is None  # an older shape


def test_only_expired_answers_are_forgotten() -> None:
    store: dict[str, Any] = {
        f"{KIND}:acct:old": saved(1000.0),
        f"{KIND}:acct:new": saved(1990.0),
        f"{KIND}:acct:legacy": (200, b"{}", 1990.0),
        "payment_intent:pi_1": object(),  # the emulator's own objects stay
    }
    assert forget_expired(store, lifetime=60.0, now=2000.0) == 2
    assert sorted(store) == [f"{KIND}:acct:new", "payment_intent:pi_1"]


def test_ageing_an_account_moves_only_its_own_keys() -> None:
    store: dict[str, Any] = {
        f"{KIND}:a:k1": saved(1000.0),
        f"{KIND}:a:k2": saved(1500.0),
        f"{KIND}:b:k1": saved(1000.0),
    }
    assert age_account(store, "a", 90_000.0) == 2
    assert store[f"{KIND}:a:k1"].saved_at == 1000.0 - 90_000.0
    assert store[f"{KIND}:a:k2"].saved_at == 1500.0 - 90_000.0
    assert store[f"{KIND}:b:k1"].saved_at == 1000.0


@contextlib.asynccontextmanager
async def endpoint(handler: Any) -> AsyncIterator[TestClient]:
    """The middleware and its controls on a bare app, with `handler` at POST /v1/things."""
    app = web.Application()
    install_idempotency(app, {})
    app.router.add_post("/v1/things", handler)
    async with TestClient(TestServer(app)) as client:
        yield client


def with_key(key: str) -> dict[str, str]:
    return {**ACCOUNT_A, "Idempotency-Key": key}


async def test_a_key_sent_while_its_first_request_runs_is_refused_with_409() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return web.json_response({"id": f"thing_{calls}"})

    async with endpoint(slow) as client:
        first = asyncio.create_task(
            client.post("/v1/things", data={"a": "1"}, headers=with_key("k"))
        )
        await asyncio.wait_for(started.wait(), 5)
        second = await asyncio.wait_for(  # bounded: without the check it would wait too
            client.post("/v1/things", data={"a": "1"}, headers=with_key("k")), 5
        )
        assert second.status == 409
        error = (await second.json())["error"]
        assert error["type"] == "idempotency_error"
        assert error["code"] == "idempotency_key_in_use"
        assert "another in-progress request using this Idempotent Key" in error["message"]
        release.set()
        assert (await first).status == 200
        third = await client.post("/v1/things", data={"a": "1"}, headers=with_key("k"))
        assert third.headers.get("Idempotent-Replayed") == "true"
        assert await third.json() == {"id": "thing_1"}
    assert calls == 1


async def test_an_error_the_endpoint_raises_is_saved_and_replayed() -> None:
    calls = 0

    async def declines(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        raise UserError(402, "Your card was declined.", {"code": "card_declined"})

    async with endpoint(declines) as client:
        first = await client.post("/v1/things", data={"a": "1"}, headers=with_key("k"))
        again = await client.post("/v1/things", data={"a": "1"}, headers=with_key("k"))
        assert (first.status, again.status) == (402, 402)
        assert await again.json() == await first.json()
        assert again.headers.get("Idempotent-Replayed") == "true"
    assert calls == 1


async def test_a_crash_of_the_endpoint_is_a_500_saved_under_its_key() -> None:
    calls = 0

    async def crashes(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug")

    async with endpoint(crashes) as client:
        first = await client.post("/v1/things", data={"a": "1"}, headers=with_key("k"))
        again = await client.post("/v1/things", data={"a": "1"}, headers=with_key("k"))
        assert (first.status, again.status) == (500, 500)
        assert (await again.json())["error"]["type"] == "api_error"
        assert again.headers.get("Idempotent-Replayed") == "true"
    assert calls == 1


async def test_a_request_refused_as_invalid_leaves_its_key_free_for_the_corrected_one() -> None:
    async def validates(request: web.Request) -> web.Response:
        if (await request.post()).get("amount") != "300":
            raise UserError(400, "Bad request")
        return web.json_response({"id": "thing_1"})

    async with endpoint(validates) as client:
        bad = await client.post("/v1/things", data={"amount": "-3"}, headers=with_key("k"))
        good = await client.post("/v1/things", data={"amount": "300"}, headers=with_key("k"))
        assert (bad.status, good.status) == (400, 200)
        assert "Idempotent-Replayed" not in good.headers


async def test_a_key_longer_than_255_characters_is_refused_unrun() -> None:
    calls = 0

    async def counts(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response({})

    async with endpoint(counts) as client:
        refused = await client.post("/v1/things", headers=with_key("k" * 256))
        accepted = await client.post("/v1/things", headers=with_key("k" * 255))
        assert (refused.status, accepted.status) == (400, 200)
    assert calls == 1


async def test_an_armed_failure_meets_requests_without_a_key_too_then_stops() -> None:
    calls = 0

    async def counts(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response({"calls": calls})

    async with endpoint(counts) as client:
        arm = {"path": "/v1/things", "status": 503, "count": 2, "after": False}
        armed = await client.post("/_vult/fail_next", json=arm, headers=ACCOUNT_A)
        assert armed.status == 200
        first = await client.post("/v1/things", headers=ACCOUNT_A)
        second = await client.post("/v1/things", headers=ACCOUNT_A)
        third = await client.post("/v1/things", headers=ACCOUNT_A)
        assert [first.status, second.status, third.status] == [503, 503, 200]
        assert (await first.json())["error"] == {
            "type": "api_error",
            "message": "An unknown error occurred",
        }
        assert calls == 1  # the failures did no work
        arm = {"path": "/v1/things", "status": 500, "after": True}
        await client.post("/_vult/fail_next", json=arm, headers=ACCOUNT_A)
        lost = await client.post("/v1/things", headers=ACCOUNT_A)
        assert lost.status == 500
        assert calls == 2  # the work was done, its answer lost


@pytest.mark.parametrize(
    "arm",
    [
        {"path": "/v1/things", "status": 404},
        {"path": "/_vult/fail_next", "status": 500},
        {"path": "/v1/things", "status": 500, "count": 0},
        {"path": "/v1/things", "status": True},
        {"path": "/v1/things", "status": 500, "after": "yes"},
        {"status": 500},
    ],
)
async def test_a_failure_the_control_cannot_mean_is_refused(arm: dict[str, Any]) -> None:
    async def unused(request: web.Request) -> web.Response:
        return web.json_response({})

    async with endpoint(unused) as client:
        answer = await client.post("/_vult/fail_next", json=arm, headers=ACCOUNT_A)
        assert answer.status == 400
        assert (await client.post("/v1/things", headers=ACCOUNT_A)).status == 200


async def test_the_controls_need_a_secret_key() -> None:
    async def unused(request: web.Request) -> web.Response:
        return web.json_response({})

    async with endpoint(unused) as client:
        publishable = {"Authorization": "Bearer pk_test_a"}
        arm = {"path": "/v1/things", "status": 500}
        assert (await client.post("/_vult/fail_next", json=arm, headers=publishable)).status == 401
        age = {"seconds": 90_000}
        assert (
            await client.post("/_vult/idempotency/age", json=age, headers=publishable)
        ).status == 401
        assert (await client.post("/v1/things", headers=ACCOUNT_A)).status == 200
