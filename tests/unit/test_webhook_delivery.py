"""A verified Stripe event that cannot reach its workflow is answered 503, so Stripe retries
it (for days) instead of it being lost; one for an order whose workflow has finished is 200
once its late-payment workflow has it; one for an order whose workflow is gone while the
order can still change is 503 while the order is resumed (the resumed run gets it again)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from api.routes import webhooks
from tests.support.stripe_signing import sign
from vult.process.settings import Settings

SECRET = "whsec_unit_test"


class _Handle:
    def __init__(self, status: RPCStatusCode, signals: list[Any]) -> None:
        self._status, self._signals = status, signals

    async def signal(self, _signal: Any, event: Any) -> None:
        self._signals.append(event)
        raise RPCError("stand-in", self._status, b"")


class _Client:
    """Stands in for the Temporal client: every signal fails with the given status."""

    def __init__(self, status: RPCStatusCode) -> None:
        self.status = status
        self.signals: list[Any] = []
        self.started: list[str] = []

    async def start_workflow(self, _workflow: Any, _arg: Any, *, id: str, **_: Any) -> None:
        self.started.append(id)

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        assert workflow_id.startswith("order-")
        return _Handle(self.status, self.signals)


@pytest.fixture(autouse=True)
def _every_payment_intent_is_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ownership check reads PostgreSQL (tests/integration/test_webhooks.py has it);
    here every PaymentIntent is ours, of the order its metadata names."""

    async def ours(_engine: object, found: Any, _owner: str) -> uuid.UUID:
        return found.order_id

    monkeypatch.setattr(webhooks, "_our_order", ours)


def order_finished(monkeypatch: pytest.MonkeyPatch, finished: bool) -> list[uuid.UUID]:
    """Whether the order's row says it is done (tests/integration/test_orders_resumed.py
    reads the real row); returns the orders a resume was asked for."""
    resumed: list[uuid.UUID] = []

    async def resume_if_gone(_engine: object, _commands: object, order_id: uuid.UUID) -> bool:
        if not finished:
            resumed.append(order_id)
        return not finished

    monkeypatch.setattr(webhooks, "resume_if_gone", resume_if_gone)
    return resumed


def post_event(client: _Client) -> int:
    settings = Settings(  # never connected to: the ownership check is stood in for
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        stripe_webhook_secret=SECRET,
    )
    payload = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": "pi_1",
                    "object": "payment_intent",
                    "metadata": {"order_id": str(uuid.uuid4())},
                }
            },
        }
    ).encode()
    with TestClient(create_app(settings, temporal=client)) as http:  # type: ignore[arg-type]
        response = http.post(
            "/api/webhooks/stripe",
            content=payload,
            headers={"Stripe-Signature": sign(payload, secret=SECRET)},
        )
    return response.status_code


def test_an_event_temporal_cannot_take_now_is_503_so_stripe_retries() -> None:
    client = _Client(RPCStatusCode.UNAVAILABLE)
    assert post_event(client) == 503
    assert [e.payment_intent_id for e in client.signals] == ["pi_1"]


def test_an_event_for_an_order_whose_workflow_finished_is_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _Client(RPCStatusCode.NOT_FOUND)
    order_finished(monkeypatch, True)
    assert post_event(client) == 200
    # ... and handed to the PaymentIntent's late-payment workflow, not dropped.
    assert client.started == ["late-payment-pi_1"]


def test_an_event_for_an_order_whose_workflow_is_gone_waits_for_its_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _Client(RPCStatusCode.NOT_FOUND)
    resumed = order_finished(monkeypatch, False)
    assert post_event(client) == 503  # Stripe sends it again, to the resumed run
    assert len(resumed) == 1 and client.started == []  # no after-close workflow
