"""The set-up job's check of the Stripe account's webhook endpoint: subscribed to every
event the service needs, and rendering events at the API version the service speaks."""

from __future__ import annotations

from vult.process.stripe_client import API_VERSION
from vult.process.stripe_setup import missing_events, version_mismatches

URL = "https://shop.example/api/webhooks/stripe"


def endpoint(**fields: object) -> dict[str, object]:
    return {"id": "we_1", "url": URL, "status": "enabled", "enabled_events": ["*"], **fields}


def test_an_endpoint_at_the_services_version_passes() -> None:
    assert version_mismatches([endpoint(api_version=API_VERSION)]) == []


def test_an_endpoint_at_another_version_is_named_with_both_versions() -> None:
    (wrong,) = version_mismatches([endpoint(api_version="2024-06-20")])
    assert "we_1" in wrong and "2024-06-20" in wrong and API_VERSION in wrong


def test_an_endpoint_on_the_accounts_default_version_is_not_vouched_for() -> None:
    (wrong,) = version_mismatches([endpoint(api_version=None)])
    assert "account's default" in wrong and API_VERSION in wrong


def test_events_are_missing_until_some_endpoint_subscribes_to_them() -> None:
    needed = frozenset({"charge.refunded", "payment_intent.succeeded"})
    assert missing_events([], URL, needed)[1:] == sorted(needed)
    partial = endpoint(enabled_events=["charge.refunded"])
    assert missing_events([partial], URL, needed) == ["payment_intent.succeeded"]
    other = endpoint(id="we_2", enabled_events=["payment_intent.succeeded"])
    assert missing_events([partial, other], URL, needed) == []
    assert missing_events([endpoint()], URL, needed) == []
