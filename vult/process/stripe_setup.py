"""What the service needs of the Stripe account, checked by the set-up job in production:
a webhook endpoint for this service subscribed to every event it acts on.

A missing subscription fails nowhere else: Stripe simply never sends those events (a
refund that fails days later, a dispute), and the money they move goes unnoticed."""

from __future__ import annotations

import stripe

from vult.domain.stripe_events import REQUIRED

WEBHOOK_PATH = "/api/webhooks/stripe"


async def missing_webhook_events(
    client: stripe.StripeClient, url: str, required: frozenset[str] = REQUIRED
) -> list[str]:
    """The events the service needs that no enabled endpoint at `url` is subscribed to
    (with `url` empty: any endpoint whose URL ends in the webhook route)."""
    listed = await client.v1.webhook_endpoints.list_async(params={"limit": 100})
    enabled: set[str] = set()
    found = False
    for endpoint in listed.data:
        data = endpoint.to_dict()
        ours = data.get("url") == url if url else str(data.get("url", "")).endswith(WEBHOOK_PATH)
        if ours and data.get("status") == "enabled":
            found = True
            enabled |= set(data.get("enabled_events") or [])
    if not found:
        where = url or f"a URL ending in {WEBHOOK_PATH}"
        return [f"(no enabled webhook endpoint at {where})", *sorted(required)]
    return [] if "*" in enabled else sorted(required - enabled)
