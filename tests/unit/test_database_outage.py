"""With PostgreSQL unreachable, reads answer 503 with a message (the caller may retry), not a
500 with a stack trace; the pool reconnects by itself once the database is back."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from api.app import create_app
from vult.process.settings import Settings


class _NoTemporal:
    """Never called: these requests only read."""


def test_a_read_while_the_database_is_down_is_answered_503() -> None:
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(settings, temporal=_NoTemporal())  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.get(f"/api/orders/{uuid.uuid4()}")
    assert answer.status_code == 503
    assert answer.json() == {"error": "The order database is unavailable; please try again"}


def test_a_create_and_the_catalogue_while_the_database_is_down_are_answered_503() -> None:
    """The create reads the catalogue before it starts anything: with the database away it
    answers 503 and places nothing (Temporal is never asked)."""
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(settings, temporal=_NoTemporal())  # type: ignore[arg-type]
    body = {
        "customerEmail": "ann@example.com",
        "shippingAddress": {
            "fullName": "Ann Lee",
            "addressLine1": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62701",
            "country": "US",
        },
        "lineItems": [{"productId": str(uuid.uuid4()), "quantity": 1}],
    }
    with TestClient(app, raise_server_exceptions=False) as http:
        created = http.post("/api/orders", json=body, headers={"Idempotency-Key": "k"})
        listed = http.get("/api/products")
    for answer in (created, listed):
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"error": "The order database is unavailable; please try again"}
