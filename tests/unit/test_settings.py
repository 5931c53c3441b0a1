"""Settings: environment names, timers as durations, and production refusing placeholders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from vult.process.payload_keys import new_key_spec
from vult.process.settings import Settings

REAL = {
    "ENVIRONMENT": "production",
    "STRIPE_SECRET_KEY": "sk_live_" + "a" * 24,
    "STRIPE_PUBLISHABLE_KEY": "pk_live_" + "b" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "c" * 32,
    "OPS_API_TOKEN": "o" * 40,
    "CODEC_AUTH_TOKEN": "d" * 40,
    "PAYLOAD_ENCRYPTION_KEYS": new_key_spec("prod-1"),
    "FRONTEND_ORIGINS": "https://shop.example.com",
}


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_development_starts_on_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, {})
    assert not settings.is_production
    assert settings.tax_rate == settings.tax_rate.__class__("0.08")


def test_production_with_real_secrets_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(monkeypatch, REAL).is_production


@pytest.mark.parametrize(
    "name,value",
    [
        ("STRIPE_SECRET_KEY", "sk_test_vult_local"),
        ("STRIPE_SECRET_KEY", "changeme"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_vult_local_development_only"),
        ("OPS_API_TOKEN", "vult-ops-local-development-token"),
        ("CODEC_AUTH_TOKEN", "short"),
        ("PAYLOAD_ENCRYPTION_KEYS", ""),
        ("PAYLOAD_ENCRYPTION_KEYS", "k1:notakey"),
        ("FRONTEND_ORIGINS", "*"),
    ],
)
def test_production_refuses_a_placeholder_or_missing_secret(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(ValidationError, match="refusing to start in production"):
        settings_from(monkeypatch, {**REAL, name: value})


def test_timers_are_read_as_iso_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch, {"PAYMENT_WINDOW": "PT2H", "PAYMENT_RECONCILE_AFTER": "PT90S"}
    )
    timing = settings.order_timing()
    assert timing.payment_window == timedelta(hours=2)
    assert timing.reconcile_after == timedelta(seconds=90)


def test_a_negative_timer_or_tax_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        settings_from(monkeypatch, {"PAYMENT_WINDOW": "-PT5M"})
    with pytest.raises(ValidationError):
        settings_from(monkeypatch, {"TAX_RATE": "-0.1"})


def test_postgres_urls_use_async_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, {"DATABASE_URL": "postgres://u@db:5432/vult"})
    assert settings.database_url == "postgresql+psycopg://u@db:5432/vult"


@pytest.mark.parametrize("currency,places", [("JPY", 0), ("KWD", 3)])
def test_a_currency_without_two_decimal_places_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, currency: str, places: int
) -> None:
    with pytest.raises(ValidationError, match=f"CURRENCY {currency} has {places} decimal places"):
        settings_from(monkeypatch, {"CURRENCY": currency})


def test_a_two_decimal_currency_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(monkeypatch, {"CURRENCY": "eur"}).currency == "EUR"
