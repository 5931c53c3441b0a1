"""Ops on the real programs: encrypted history, search attributes, the codec endpoint with
its authentication and CORS, the API's metrics, and logs free of secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from typing import Any

import httpx
import pytest
import stripe
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.api.history.v1 import History
from temporalio.client import Client

from tests.support.integration import (
    CODEC_TOKEN,
    GOOD_CARD,
    order_body,
    pay_with_card,
    wait_for_status,
)
from tests.support.stripe_signing import sign
from vult.process.settings import Settings
from vult.temporal.codec import ENCODING
from workflows.order import workflow_id_for


async def paid_order(http: httpx.AsyncClient, client: stripe.StripeClient, email: str) -> dict:
    order = (await http.post("/api/orders", json=order_body(customerEmail=email))).json()
    intent = (await http.post(f"/api/orders/{order['orderId']}/payment")).json()
    assert await pay_with_card(client, intent["paymentIntentId"], GOOD_CARD) == "succeeded"
    await wait_for_status(http, order["orderId"], "Confirmed")
    return order | {"clientSecret": intent["clientSecret"]}


def history_payloads(history: Any) -> list[Any]:
    """Every payload in a history, wherever it sits in the events."""
    found: list[Any] = []

    def walk(message: Any) -> None:
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            items = value if field.is_repeated else [value]
            for item in items:
                if field.message_type.full_name == "temporal.api.common.v1.Payload":
                    found.append(item)
                elif hasattr(item, "ListFields"):
                    walk(item)

    for event in history.events:
        walk(event)
    return found


async def test_workflow_history_holds_only_ciphertext(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    temporal_address: str,
    temporal_client: Client,
) -> None:
    email = f"cipher-{uuid.uuid4().hex[:8]}@example.com"
    order = await paid_order(http, stripe_client, email)
    workflow_id = workflow_id_for(uuid.UUID(order["orderId"]))
    plain = await Client.connect(temporal_address)  # no codec: what the server stores
    history = await plain.get_workflow_handle(workflow_id).fetch_history()
    payloads = [p for p in history_payloads(history) if p.data]
    assert payloads
    assert all(p.metadata["encoding"] == ENCODING for p in payloads)
    raw = History(events=history.events).SerializeToString()
    for secret in (order["clientSecret"], "1 Main St", "Springfield", "Ann Lee"):
        assert secret.encode() not in raw
    # The email is stored in clear only as the CustomerEmail search attribute, which ops
    # search by (docs/operations.md); no other payload carries it.
    assert raw.count(email.encode()) == 1
    # With the key, the same history reads normally.
    readable = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    assert readable.events


async def test_ops_find_an_order_by_number_email_status_and_total(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_client: Client
) -> None:
    email = f"search-{uuid.uuid4().hex[:8]}@example.com"
    order = await paid_order(http, stripe_client, email)
    wanted = workflow_id_for(uuid.UUID(order["orderId"]))
    for query in (
        f'OrderNumber = "{order["orderNumber"]}"',
        f'CustomerEmail = "{email}"',
        f'CustomerEmail = "{email}" AND OrderStatus = "Confirmed"',
        f'CustomerEmail = "{email}" AND OrderTotal = 294.12',
    ):
        ids: list[str] = []
        for _ in range(50):  # visibility is eventually consistent
            ids = [w.id async for w in temporal_client.list_workflows(query)]
            if ids:
                break
            await asyncio.sleep(0.1)
        assert ids == [wanted], query


async def test_the_codec_endpoint_decodes_for_those_with_the_token(
    http: httpx.AsyncClient, stripe_client: stripe.StripeClient, temporal_address: str
) -> None:
    email = f"codec-{uuid.uuid4().hex[:8]}@example.com"
    order = await paid_order(http, stripe_client, email)
    plain = await Client.connect(temporal_address)
    history = await plain.get_workflow_handle(
        workflow_id_for(uuid.UUID(order["orderId"]))
    ).fetch_history()
    body = json_format.MessageToJson(Payloads(payloads=history_payloads(history)))

    for path, headers in (
        ("/codec/decode", {"Authorization": f"Bearer {CODEC_TOKEN}"}),
        (f"/codec/{CODEC_TOKEN}/decode", {}),
    ):
        response = await http.post(path, content=body, headers=headers)
        assert response.status_code == 200
        decoded = [base64.b64decode(p.get("data", "")) for p in response.json()["payloads"]]
        assert any(email.encode() in d for d in decoded)

    for path, headers in (
        ("/codec/decode", {}),
        ("/codec/decode", {"Authorization": "Bearer wrong"}),
        ("/codec/wrong-token/decode", {}),
    ):
        refused = await http.post(path, content=body, headers=headers)
        assert refused.status_code == 401
        assert email not in refused.text


async def test_the_codec_answers_cors_only_for_the_web_ui(http: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    ui = await http.options(
        "/codec/decode", headers={"Origin": "http://localhost:8233", **preflight}
    )
    assert ui.status_code == 200
    assert ui.headers["access-control-allow-origin"] == "http://localhost:8233"
    other = await http.options(
        "/codec/decode", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers
    shop = await http.options(
        "/codec/decode", headers={"Origin": "http://localhost:4200", **preflight}
    )
    assert "access-control-allow-origin" not in shop.headers
    api = await http.options(
        "/api/orders", headers={"Origin": "http://localhost:4200", **preflight}
    )
    assert api.headers["access-control-allow-origin"] == "http://localhost:4200"


async def test_webhook_signature_failures_are_counted_on_the_internal_metrics_port(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    metrics = f"http://{settings.api_metrics_address}/metrics"

    async def count() -> float:
        text = (await http.get(metrics)).text
        for line in text.splitlines():
            if line.startswith("vult_webhook_signature_failures_total "):
                return float(line.split()[1])
        return 0.0

    assert (await http.get("/metrics")).status_code == 404  # not on the public API port
    before = await count()
    payload = json.dumps({"id": "evt_forged", "type": "payment_intent.succeeded"}).encode()
    forged = await http.post(
        "/api/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload, secret="whsec_attacker")},
    )
    assert forged.status_code == 401
    assert await count() == before + 1


async def test_logs_carry_no_secrets_card_numbers_or_addresses(
    http: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # The clients' request logs too, whatever an earlier test of this process left them at.
    for name in ("stripe", "httpx"):
        caplog.set_level(logging.INFO, logger=name)
    email = f"logs-{uuid.uuid4().hex[:8]}@example.com"
    order = await paid_order(http, stripe_client, email)
    assert (await http.post(f"/api/orders/{order['orderId']}/cancel")).status_code == 204
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert caplog.records  # the worker and the API did log
    for secret in (order["clientSecret"], GOOD_CARD, "sk_test_", "whsec_", "1 Main St", "62701"):
        assert secret not in text, secret
