"""The one StripeClient, built from settings by whoever owns the process, and the one
Stripe API version the service speaks.

The version is the locked `stripe` package's: its params types (`stripe.params.*`) are
Stripe's spec for that version, so the type checker proves every request the service
builds against the API it is sent to. Every request carries it (`Stripe-Version`), the
webhook endpoint renders events at it, the set-up job checks the endpoint against it, and
the checkout page loads the Stripe.js release of the same name."""

from __future__ import annotations

import stripe

from vult.process.settings import Settings

API_VERSION: str = stripe.api_version  # e.g. "2026-10-28.endive"
# The release name, which also names Stripe.js's version (js.stripe.com/<release>/stripe.js).
API_RELEASE: str = API_VERSION.rpartition(".")[2]


def make_stripe_client(settings: Settings, http_client: stripe.HTTPClient) -> stripe.StripeClient:
    """`http_client` is the caller's to close (`await http_client.close_async()`): every
    call we make is async, and `stripe.AIOHTTPClient()` costs less CPU per request than the
    SDK's default httpx client (docs/performance.md)."""
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        stripe_version=API_VERSION,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else {},
        http_client=http_client,
        max_network_retries=0,  # Temporal's retry policy owns retries
    )
