"""How the Stripe activities name Stripe's refusals: our own key refused (401, 403) is a
configuration error for ops; any other 4xx is the request's refusal."""

from __future__ import annotations

import pytest
import stripe

from activities.stripe_payments import _is_refusal, _refusal
from vult.domain.failures import Failure


@pytest.mark.parametrize(
    "error",
    [
        stripe.AuthenticationError("Invalid API Key provided", http_status=401),
        stripe.PermissionError("This key lacks the permission", http_status=403),
    ],
)
def test_our_key_refused_is_a_configuration_error(error: stripe.StripeError) -> None:
    assert _is_refusal(error)
    refusal = _refusal(error)
    assert refusal.type == Failure.STRIPE_KEY_REFUSED and refusal.non_retryable
    assert "configuration error" in refusal.message and "STRIPE_SECRET_KEY" in refusal.message


def test_a_refused_request_stays_the_requests_refusal() -> None:
    error = stripe.InvalidRequestError("No such payment_intent", param=None, http_status=404)
    refusal = _refusal(error)
    assert refusal.type == Failure.PAYMENT_REFUSED


def test_rate_limits_and_idempotency_races_are_retried() -> None:
    assert not _is_refusal(stripe.RateLimitError("slow down", http_status=429))
    assert not _is_refusal(stripe.IdempotencyError("in flight", http_status=409))
