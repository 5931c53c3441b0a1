"""One webhook try to one of the shop's endpoints, as Standard Webhooks specifies it
(https://www.standardwebhooks.com/): the headers `webhook-id` (the event's id, the same on
every try), `webhook-timestamp` (this try's) and `webhook-signature` (v1, HMAC-SHA256 of
"id.timestamp.body" with the endpoint's secret), signed with the reference library.

Bounded: the whole try (connect, send, answer) within the timeout, at most 64 KB of the
answer read, no redirect followed (a 3xx is an answer like any other, not delivered).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import httpx
from standardwebhooks.webhooks import Webhook

from vult.process.outbound import WebhookEndpoint

_ANSWER_READ = 64 * 1024
_ANSWER_KEPT = 300


@dataclass(frozen=True)
class Posted:
    outcome: Literal["delivered", "gone", "try_again"]
    status: int | None
    text: str


def signed_headers(
    endpoint: WebhookEndpoint, event_id: str, body: bytes, at: datetime, user_agent: str
) -> dict[str, str]:
    signature = Webhook(endpoint.secret.get_secret_value()).sign(event_id, at, body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": user_agent,
        # Read as sent: a compressed answer would be inflated past the read bound.
        "accept-encoding": "identity",
    }


async def post(
    http: httpx.AsyncClient,
    endpoint: WebhookEndpoint,
    event_id: str,
    body: bytes,
    timeout: float,
    user_agent: str,
) -> Posted:
    headers = signed_headers(endpoint, event_id, body, datetime.now(UTC), user_agent)
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(
                "POST", endpoint.url, content=body, headers=headers, follow_redirects=False
            ) as answer:
                read = b""
                async for chunk in answer.aiter_raw():
                    read += chunk
                    if len(read) >= _ANSWER_READ:
                        break
    except TimeoutError:
        return Posted("try_again", None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return Posted("try_again", None, f"{type(exc).__name__}: {exc}"[:_ANSWER_KEPT])
    status = answer.status_code
    said = read[:_ANSWER_KEPT].decode("utf-8", "replace").strip()
    text = f"{status} {answer.reason_phrase}" + (f": {said}" if said else "")
    if 300 <= status < 400:
        text += f" (redirect to {answer.headers.get('location', '?')!r} not followed)"
    if 200 <= status < 300:
        return Posted("delivered", status, text[:_ANSWER_KEPT])
    if status == 410:
        return Posted("gone", status, text[:_ANSWER_KEPT])
    return Posted("try_again", status, text[:_ANSWER_KEPT])
