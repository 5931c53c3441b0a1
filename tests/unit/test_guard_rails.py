"""Security headers on every response; a request body over the cap is refused with 413
before anything parses it, whether it declares its length or streams it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.guard_rails import MAX_BODY_BYTES
from vult.process.settings import Settings


class _NoTemporal:
    pass


@pytest.fixture(scope="module")
def http() -> Iterator[TestClient]:
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings, temporal=_NoTemporal())) as client:  # type: ignore[arg-type]
        yield client


def test_a_body_over_the_cap_is_refused_with_413_before_it_is_read(http: TestClient) -> None:
    response = http.post(
        "/api/orders",
        content=b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "The request body is larger than 1024 KB"}


def test_a_streamed_body_over_the_cap_is_refused_too(http: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (MAX_BODY_BYTES // 4)

    response = http.post(
        "/api/webhooks/stripe", content=chunks(), headers={"stripe-signature": "t=1,v1=x"}
    )
    assert response.status_code == 413


def test_every_response_carries_the_security_headers(http: TestClient) -> None:
    response = http.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    missing = http.get("/api/nothing")  # the framework's own answers too
    assert missing.headers["x-content-type-options"] == "nosniff"


def test_the_shop_page_keeps_its_own_policy(http: TestClient) -> None:
    page = http.get("/shop/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_an_api_started_without_tokens_refuses_ops_and_codec_calls_even_with_the_dev_tokens(
    http: TestClient,
) -> None:
    from vult.process.settings import LOCAL_CODEC_AUTH_TOKEN, LOCAL_OPS_API_TOKEN

    ops = http.get("/api/ops/orders", headers={"Authorization": f"Bearer {LOCAL_OPS_API_TOKEN}"})
    assert ops.status_code == 503
    assert ops.json() == {"error": "The ops API is off: this API was started without OPS_API_TOKEN"}
    codec = http.post(f"/codec/{LOCAL_CODEC_AUTH_TOKEN}/decode", json={"payloads": []})
    assert codec.status_code == 503
    assert "CODEC_AUTH_TOKEN" in codec.json()["error"]


def test_the_api_explorer_gets_a_policy_of_its_own(http: TestClient) -> None:
    docs = http.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'") and "frame-ancestors 'none'" in policy
