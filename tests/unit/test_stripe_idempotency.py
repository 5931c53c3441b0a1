"""The emulator's saved idempotent answers are forgotten once expired, and nothing else is."""

from __future__ import annotations

from typing import Any

from dev.stack.stripe_idempotency import KIND, forget_expired


def test_only_expired_answers_are_forgotten() -> None:
    store: dict[str, Any] = {
        f"{KIND}:acct:/v1/refunds:old": (200, b"{}", 1000.0),
        f"{KIND}:acct:/v1/refunds:new": (200, b"{}", 1990.0),
        "payment_intent:pi_1": object(),  # the emulator's own objects stay
    }
    assert forget_expired(store, lifetime=60.0, now=2000.0) == 1
    assert sorted(store) == [f"{KIND}:acct:/v1/refunds:new", "payment_intent:pi_1"]
