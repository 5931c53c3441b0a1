"""Every Stripe request is typed by the SDK, and nothing silences the type checker on one
(dev/stripe_calls.py, which `python3 tasks.py lint` also runs)."""

from __future__ import annotations

import stripe

from dev.stripe_calls import ignored_stripe_calls, scan
from vult.process.stripe_client import API_RELEASE, API_VERSION


def test_no_stripe_call_in_the_project_silences_the_type_checker() -> None:
    assert scan() == []


def test_a_silenced_stripe_call_is_found_on_any_line_of_the_call() -> None:
    source = (
        "async def create(client, params):\n"
        "    return await client.v1.payment_intents.create_async(\n"
        "        params={'payment_method_types': ['card']},  # type: ignore[typeddict-item]\n"
        "    )\n"
        "def verify(body, header):\n"
        "    return stripe.Webhook.construct_event(body, header, 'whsec')  # type: ignore\n"
        "def other(x):\n"
        "    return len(x)  # type: ignore[arg-type]\n"
    )
    assert ignored_stripe_calls(source) == ["<source>:3", "<source>:6"]


def test_the_service_speaks_the_locked_sdks_api_version() -> None:
    assert API_VERSION == stripe.api_version
    assert API_VERSION.endswith(f".{API_RELEASE}") and API_RELEASE.isalpha()
