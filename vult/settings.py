"""Configuration from the environment (or a `.env` file), read once through get_settings()."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vult.contracts import OrderTiming

# Values the local stack uses. They only ever talk to the local Stripe emulator.
LOCAL_STRIPE_SECRET_KEY = "sk_test_vult_local"
LOCAL_STRIPE_PUBLISHABLE_KEY = "pk_test_vult_local"
LOCAL_WEBHOOK_SECRET = "whsec_vult_local_development_only"
LOCAL_OPS_API_TOKEN = "vult-ops-local-development-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: str = Field(default="development", description="development or production")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/vult"

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "vult-orders"

    stripe_secret_key: SecretStr = SecretStr(LOCAL_STRIPE_SECRET_KEY)
    stripe_publishable_key: str = LOCAL_STRIPE_PUBLISHABLE_KEY
    stripe_webhook_secret: SecretStr = SecretStr(LOCAL_WEBHOOK_SECRET)
    # Empty for api.stripe.com; the emulator's address in development.
    stripe_api_base: str = ""
    # Stripe's own default tolerance for webhook timestamps.
    stripe_webhook_tolerance_seconds: int = 300

    tax_rate: Decimal = Decimal("0.08")
    shipping_cost: Decimal = Decimal("0")
    currency: str = "USD"

    # Durable timers of each order (ISO 8601 durations like PT15M, or seconds).
    # An order not paid within this window from creation is cancelled.
    payment_window: timedelta = timedelta(hours=24)
    # PaymentProcessing this long with no webhook: ask Stripe (then back off, up to the max).
    payment_reconcile_after: timedelta = timedelta(minutes=15)
    payment_reconcile_max_interval: timedelta = timedelta(hours=6)
    # How long a workflow keeps listening after cancellation, for late payment events
    # (Stripe retries webhooks for up to three days).
    cancelled_grace_period: timedelta = timedelta(days=3)

    # Bearer token for the ops endpoints (/api/ops/...).
    ops_api_token: SecretStr = SecretStr(LOCAL_OPS_API_TOKEN)

    @field_validator("currency")
    @classmethod
    def _currency_is_iso(cls, v: str) -> str:
        if len(v) != 3 or not v.isalpha():
            raise ValueError("CURRENCY must be a three-letter ISO 4217 code")
        return v.upper()

    @field_validator("tax_rate", "shipping_cost")
    @classmethod
    def _not_negative(cls, v: Decimal) -> Decimal:
        if v < 0:
            raise ValueError("must not be negative")
        return v

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, v: str) -> str:
        # Accept the usual postgres:// and postgresql:// forms; always use async psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix) :]
        return v

    @field_validator(
        "payment_window",
        "payment_reconcile_after",
        "payment_reconcile_max_interval",
        "cancelled_grace_period",
    )
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("must be a positive duration")
        return v

    def order_timing(self) -> OrderTiming:
        return OrderTiming(
            payment_window=self.payment_window,
            reconcile_after=self.payment_reconcile_after,
            reconcile_max_interval=self.payment_reconcile_max_interval,
            cancelled_grace=self.cancelled_grace_period,
        )

    @property
    def is_production(self) -> bool:
        return self.environment.lower() == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
