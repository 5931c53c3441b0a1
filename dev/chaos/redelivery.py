"""Stripe delivering events again: it retries a webhook for days, and may deliver an event
twice or out of order. The suite takes the emulator's own events (same ids, same payloads),
signs each afresh as Stripe signs every delivery attempt, and posts them in a shuffled order
to any API process: while orders are under way, and once more after cancelled orders'
workflows have closed (the late-payment path)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections import Counter
from typing import Any

import httpx
import stripe

from dev.chaos.stripe_lists import every
from vult.domain.stripe_events import HANDLED

ATTEMPTS = 20  # per event, while an API answers 503 or is down (Stripe retries too)


def stripe_events(client: stripe.StripeClient) -> list[dict[str, Any]]:
    """Every event the emulator has made of a kind the service handles."""
    events = every(lambda p: client.v1.events.list(params=p))
    return [e for e in events if e.get("type") in HANDLED]


def signed(event: dict[str, Any], secret: str) -> tuple[bytes, str]:
    payload = json.dumps(event, sort_keys=True).encode()
    now = int(time.time())
    mac = hmac.new(secret.encode(), b"%d." % now + payload, hashlib.sha256).hexdigest()
    return payload, f"t={now},v1={mac}"


async def redeliver(
    http: httpx.AsyncClient,
    apis: list[str],
    secret: str,
    events: list[dict[str, Any]],
    rng: random.Random,
    concurrency: int = 8,
) -> Counter[str]:
    """Post each event (in a shuffled order); returns how the APIs answered, by status."""
    events = list(events)
    rng.shuffle(events)
    answers: Counter[str] = Counter()
    queue = iter(events)

    async def one(event: dict[str, Any]) -> str:
        for _ in range(ATTEMPTS):
            payload, signature = signed(event, secret)
            try:
                response = await http.post(
                    f"{rng.choice(apis)}/api/webhooks/stripe",
                    content=payload,
                    headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                )
                if response.status_code not in (502, 503, 504):
                    return str(response.status_code)
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5 + rng.random())
        return "unanswered"

    async def sender() -> None:
        for event in queue:
            answers[await one(event)] += 1

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return answers
