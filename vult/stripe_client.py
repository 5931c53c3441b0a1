"""The one StripeClient, built from settings by whoever owns the process."""

from __future__ import annotations

import stripe

from vult.settings import Settings


def make_stripe_client(settings: Settings) -> stripe.StripeClient:
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base or {},
        http_client=stripe.HTTPXClient(),
        max_network_retries=0,  # Temporal's retry policy owns retries
    )
