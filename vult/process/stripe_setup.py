"""What the service needs of the Stripe account, checked by the set-up job in production:
a webhook endpoint for this service subscribed to every event it acts on, rendering its
events at the API version the service speaks (vult/process/stripe_client.API_VERSION).

A missing subscription fails nowhere else: Stripe simply never sends those events (a
refund that fails days later, a dispute), and the money they move goes unnoticed. An
endpoint at another API version sends events whose objects have another shape than the
one the service reads (Stripe renders each event at the endpoint's `api_version`)."""

from __future__ import annotations

from typing import Any

import stripe
from stripe.params import WebhookEndpointListParams

from vult.domain.stripe_events import REQUIRED
from vult.process.stripe_client import API_VERSION

WEBHOOK_PATH = "/api/webhooks/stripe"


async def our_endpoints(client: stripe.StripeClient, url: str) -> list[dict[str, Any]]:
    """The enabled endpoints at `url` (with `url` empty: any endpoint whose URL ends in the
    webhook route), read through every page of the account's endpoints."""
    listed = await client.v1.webhook_endpoints.list_async(
        params=WebhookEndpointListParams(limit=100)
    )
    found = []
    async for endpoint in listed.auto_paging_iter():
        data = endpoint.to_dict()
        ours = data.get("url") == url if url else str(data.get("url", "")).endswith(WEBHOOK_PATH)
        if ours and data.get("status") == "enabled":
            found.append(data)
    return found


def missing_events(
    endpoints: list[dict[str, Any]], url: str, required: frozenset[str] = REQUIRED
) -> list[str]:
    """The events the service needs that none of `endpoints` is subscribed to."""
    if not endpoints:
        where = url or f"a URL ending in {WEBHOOK_PATH}"
        return [f"(no enabled webhook endpoint at {where})", *sorted(required)]
    enabled: set[str] = set()
    for data in endpoints:
        enabled |= set(data.get("enabled_events") or [])
    return [] if "*" in enabled else sorted(required - enabled)


def version_mismatches(endpoints: list[dict[str, Any]], version: str = API_VERSION) -> list[str]:
    """One line for each endpoint whose events are rendered at another API version than
    `version`; an endpoint without its own version follows the account's default, which
    the service cannot vouch for either."""
    wrong = []
    for data in endpoints:
        theirs = data.get("api_version")
        if theirs != version:
            shown = theirs or "the account's default (none set on the endpoint)"
            wrong.append(
                f"webhook endpoint {data.get('id')} ({data.get('url')}) renders events at API "
                f"version {shown}; the service speaks {version}"
            )
    return wrong


async def missing_webhook_events(
    client: stripe.StripeClient, url: str, required: frozenset[str] = REQUIRED
) -> list[str]:
    """The events the service needs that no enabled endpoint at `url` is subscribed to."""
    return missing_events(await our_endpoints(client, url), url, required)
