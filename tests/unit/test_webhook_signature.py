"""HandleWebhookHandlerTests (spec 8.1), parsing part: Stripe's signature scheme."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from api.stripe_webhooks import NotForUs, SignatureError, payment_event, verify
from tests.support.stripe_signing import (
    SECRET,
    sign,
)
from vult.domain.payments import OWNER_KEY


def event_body(event_type: str = "payment_intent.succeeded", metadata: dict | None = None) -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": event_type,
            "data": {
                "object": {
                    "id": "pi_123",
                    "object": "payment_intent",
                    "metadata": metadata or {"order_id": "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001"},
                }
            },
        }
    ).encode()


def test_a_correctly_signed_event_verifies() -> None:
    payload = event_body()
    event = verify(payload, sign(payload), SECRET, 300)
    found = payment_event(event)
    assert found is not None
    assert found.event.payment_intent_id == "pi_123"
    assert str(found.order_id) == "6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001"


@pytest.mark.parametrize(
    "header",
    ["", "garbage", "t=1,v1=00", sign(b"other body")],
    ids=["missing", "malformed", "wrong-mac", "other-body"],
)
def test_a_bad_signature_is_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        verify(event_body(), header, SECRET, 300)


def test_a_signature_with_another_secret_is_refused() -> None:
    payload = event_body()
    with pytest.raises(SignatureError):
        verify(payload, sign(payload, secret="whsec_other"), SECRET, 300)


def test_an_empty_secret_refuses_everything() -> None:
    payload = event_body()
    with pytest.raises(SignatureError):
        verify(payload, sign(payload, secret=""), "", 300)


def test_an_old_timestamp_is_refused() -> None:
    payload = event_body()
    with pytest.raises(SignatureError):
        verify(payload, sign(payload, timestamp=int(time.time()) - 301), SECRET, 300)


def test_a_timestamp_from_the_future_is_refused() -> None:
    payload = event_body()
    with pytest.raises(SignatureError):
        verify(payload, sign(payload, timestamp=int(time.time()) + 301), SECRET, 300)


def test_events_the_service_does_not_use_are_recognised_as_such() -> None:
    payload = event_body(event_type="customer.created")
    with pytest.raises(NotForUs) as refused:
        payment_event(verify(payload, sign(payload), SECRET, 300))
    assert refused.value.reason == "unhandled_type"


def test_a_dispute_event_names_the_disputed_payment_intent_and_our_marker_is_read() -> None:
    body = json.loads(event_body(metadata={"order_id": str(uuid.uuid4()), OWNER_KEY: "prod"}))
    payload = json.dumps(body).encode()
    found = payment_event(verify(payload, sign(payload), SECRET, 300))
    assert found.owner == "prod" and found.order_id is not None
    dispute = {
        "id": "evt_dp",
        "object": "event",
        "type": "charge.dispute.created",
        "data": {"object": {"id": "dp_1", "object": "dispute", "payment_intent": "pi_9"}},
    }
    payload = json.dumps(dispute).encode()
    found = payment_event(verify(payload, sign(payload), SECRET, 300))
    assert found.event.payment_intent_id == "pi_9" and found.owner is None
    assert found.event.event_type == "charge.dispute.created"


def test_an_event_without_order_metadata_still_names_its_payment_intent() -> None:
    payload = event_body(metadata={"unrelated": "x"})
    found = payment_event(verify(payload, sign(payload), SECRET, 300))
    assert found is not None and found.order_id is None
    assert found.event.payment_intent_id == "pi_123"
