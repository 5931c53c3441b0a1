"""The one StripeClient, built from settings by whoever owns the process."""

from __future__ import annotations

import stripe

from vult.process.settings import Settings


def make_stripe_client(settings: Settings, http_client: stripe.HTTPClient) -> stripe.StripeClient:
    """`http_client` is the caller's to close (`await http_client.close_async()`): every
    call we make is async, and `stripe.AIOHTTPClient()` costs less CPU per request than the
    SDK's default httpx client (docs/performance.md)."""
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else {},
        http_client=http_client,
        max_network_retries=0,  # Temporal's retry policy owns retries
    )
