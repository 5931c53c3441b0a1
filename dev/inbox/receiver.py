"""POST /webhooks/{endpoint}: a Standard Webhooks receiver, as a shop's system would be one.

The signature is checked with the reference library and that endpoint's secret: without the
three headers the answer is 400, with a wrong signature (or a timestamp over five minutes
off) 401, from an endpoint the inbox does not know 404; otherwise 204. Every request is
kept, verified or not, with the answer given. A fault set for the endpoint (faults.py)
answers its status instead, after its delay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from dev.inbox.faults import Faults
from dev.inbox.shelf import Shelf, now_iso

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _check(secret: str | None, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
    """The answer a correct receiver gives, and why (empty when verified)."""
    if secret is None:
        return 404, "no such endpoint"
    if not all(headers.get(name) for name in HEADERS):
        return 400, "missing " + ", ".join(n for n in HEADERS if not headers.get(n))
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        return 401, str(exc)
    return 204, ""


def _event_fields(body: bytes) -> tuple[Any, Any]:
    """The event's type and orderId, as the body says (for the list; not trusted)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(event, dict):
        return None, None
    return event.get("type"), event.get("orderId")


class Receiver:
    def __init__(self, endpoints: Mapping[str, str], shelf: Shelf, faults: Faults) -> None:
        self.endpoints, self.shelf, self.faults = dict(endpoints), shelf, faults

    async def receive(self, request: web.Request) -> web.Response:
        name = request.match_info["endpoint"]
        body = await request.read()  # at most the app's client_max_size
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, error = _check(self.endpoints.get(name), body, headers)
        fault = self.faults.webhook(name)
        answered = status if fault.status == 204 else fault.status
        kind, order_id = _event_fields(body)
        self.shelf.add(
            {
                "endpoint": name,
                "webhookId": headers.get("webhook-id"),
                "webhookTimestamp": headers.get("webhook-timestamp"),
                "type": kind,
                "orderId": order_id,
                "receivedAt": now_iso(),
                "verified": not error,
                "error": error or None,
                "status": answered,
                "delaySeconds": fault.delay_seconds,
                "body": body.decode("utf-8", "replace"),
            }
        )
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if 200 <= answered < 300:
            return web.Response(status=answered)
        return web.json_response({"error": error or "inbox fault"}, status=answered)
