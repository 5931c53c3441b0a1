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
