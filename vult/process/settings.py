"""Configuration from the environment (or a `.env` file), read once through get_settings()."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vult.db.urls import async_url
from vult.domain.contracts import OrderTiming
from vult.domain.money import currency_exponent
from vult.domain.pricing import DEFAULT_CURRENCY, DEFAULT_SHIPPING_COST, DEFAULT_TAX_RATE, Pricing
from vult.process.outbound import DEFAULT_RETRY_DELAYS, WebhookEndpoint
from vult.process.payload_keys import KeyConfigError, parse_keys
from vult.release import default_build_id

# Values the local stack uses. They only ever talk to the local Stripe emulator.
LOCAL_STRIPE_SECRET_KEY = "sk_test_vult_local"
LOCAL_STRIPE_PUBLISHABLE_KEY = "pk_test_vult_local"
LOCAL_WEBHOOK_SECRET = "whsec_vult_local_development_only"
LOCAL_OPS_API_TOKEN = "vult-ops-local-development-token"
LOCAL_CODEC_AUTH_TOKEN = "vult-codec-local-development-token"

_TIMING = OrderTiming()


def is_real_stripe_secret_key(key: str) -> bool:
    """A key api.stripe.com would take (secret or restricted, live or test), not ours."""
    return key.startswith(("sk_live_", "sk_test_", "rk_live_", "rk_test_")) and (
        key != LOCAL_STRIPE_SECRET_KEY
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: str = Field(default="development", description="development or production")

    # The order database (PostgreSQL); a plain postgresql:// URL is taken as psycopg's.
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/vult"
    # Connections each process keeps. Statements are short and nothing holds a connection
    # while it waits, so ten serve dozens of requests at once (vult/db/engine.py).
    database_pool_size: int = Field(default=10, ge=1, le=100)

    # The Temporal frontend (host:port), the namespace the orders run in, and the task
    # queue the workers poll and the API starts workflows on.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "vult-orders"
    # The longest the API waits on an order's workflow before answering 503 ("outcome not
    # known yet"): past the 30 s a placement may take, inside what HTTP clients wait.
    temporal_command_timeout_seconds: float = Field(default=45.0, gt=0, le=300)
    # The order events' deliveries run on a task queue of their own, served by the worker
    # with slots of their own (DELIVERY_MAX_CONCURRENT_TRIES), so a slow receiver never
    # takes a slot an order needs. Empty: TEMPORAL_TASK_QUEUE + "-deliveries".
    temporal_delivery_task_queue: str = ""
    # Admission (api/admission.py): the commands one API process keeps in flight at its
    # order workflows at once (placements, payment requests, cancels, ops commands). One more
    # waits up to API_ADMISSION_WAIT_SECONDS for a place, then is refused with 503 and
    # Retry-After: API_RETRY_AFTER_SECONDS, nothing started. Size it to what the workers
    # finish well inside the command deadline (docs/deploying.md, "Sizing the API's
    # admission"): 20 is what one 2-core machine running everything answers in about 2 s
    # at 150 shoppers (docs/performance.md).
    api_max_commands_in_flight: int = Field(default=20, ge=1, le=10_000)
    # Of those places, how many only commands on an order already placed may take (a
    # payment request, a cancel): a new order is refused before a started one is, so an
    # admitted shopper finishes paying in a sale. Below API_MAX_COMMANDS_IN_FLIGHT.
    api_places_kept_for_started_orders: int = Field(default=5, ge=0, le=9_999)
    api_admission_wait_seconds: float = Field(default=0.5, ge=0, le=5)
    # The latency a command should keep: each second in which one took longer lowers the
    # places new orders may take by a quarter, each second within it raises them by one
    # (api/admission.py), so a sale runs at the workers' pace instead of queueing past it.
    api_admission_target_seconds: float = Field(default=1.0, gt=0, le=60)
    api_retry_after_seconds: int = Field(default=2, ge=1, le=120)
    # Per client (its address, or the one a trusted proxy names: api/client_limits.py),
    # at one API process: the commands and the `status-change` waits it may have open at
    # once; one more is refused with 429 and Retry-After, nothing started. A shopper's
    # browser needs one or two of each; many shoppers behind one address (an office's NAT)
    # share the bound (docs/deploying.md, "Per-client bounds").
    api_max_commands_per_client: int = Field(default=4, ge=1, le=10_000)
    api_max_waits_per_client: int = Field(default=8, ge=1, le=100_000)

    # The Stripe account's secret key (sk_... or a restricted rk_...): production refuses
    # the local emulator's.
    stripe_secret_key: SecretStr = SecretStr(LOCAL_STRIPE_SECRET_KEY)
    # The publishable key (pk_...) the checkout page gives Stripe.js.
    stripe_publishable_key: str = LOCAL_STRIPE_PUBLISHABLE_KEY
    # The webhook endpoint's signing secret (whsec_...): every event's signature is checked.
    stripe_webhook_secret: SecretStr = SecretStr(LOCAL_WEBHOOK_SECRET)
    # Empty for api.stripe.com; the emulator's address in development.
    stripe_api_base: str = ""
    # Stripe's own default tolerance for webhook timestamps.
    stripe_webhook_tolerance_seconds: int = 300
    # Written into the metadata (`vult_owner`) of every PaymentIntent and refund this
    # deployment makes: the Stripe account is shared (other systems, a staging deployment,
    # the Dashboard), and only PaymentIntents with this marker (or made before it, for an
    # order we have) are acted on. Give staging and production different values.
    stripe_owner: str = Field(default="vult-orders", min_length=1, max_length=100)
    # The public URL of this service's webhook endpoint, as registered at Stripe. The
    # production set-up job checks that endpoint's enabled events; empty: any endpoint
    # whose URL ends in /api/webhooks/stripe.
    stripe_webhook_url: str = ""

    # The shop's terms (spec 3.2): tax on the subtotal, rounded half to even to the cent;
    # a flat shipping cost; the ISO 4217 currency (two decimal places).
    tax_rate: Decimal = DEFAULT_TAX_RATE
    shipping_cost: Decimal = DEFAULT_SHIPPING_COST
    currency: str = DEFAULT_CURRENCY

    # Durable timers of each order, as ISO 8601 durations (PT15M, P3D).
    # An order not paid within this window from creation is cancelled.
    # The defaults are OrderTiming's (vult/domain/contracts.py).
    payment_window: timedelta = _TIMING.payment_window
    # PaymentProcessing this long with no webhook: ask Stripe (then back off, up to the max).
    payment_reconcile_after: timedelta = _TIMING.reconcile_after
    payment_reconcile_max_interval: timedelta = _TIMING.reconcile_max_interval
    # How long a workflow keeps listening after cancellation, for late payment events
    # (Stripe retries webhooks for up to three days).
    cancelled_grace_period: timedelta = _TIMING.cancelled_grace
    # An order parked for attention tries its stuck step again this often by itself.
    attention_retry: timedelta = _TIMING.attention_retry
    # Ops are reminded (needs attention) this long before a dispute's evidence is due.
    dispute_reminder: timedelta = _TIMING.dispute_reminder
    # When the money is taken: "automatic" (at payment, the seed's flow) or "at_shipment"
    # (the card is authorized at checkout and captured when ops ship: the shipped lines'
    # share). Each order keeps the mode it was placed under.
    payment_capture: Literal["automatic", "at_shipment"] = "automatic"
    # A card authorization lapses when Stripe says for its charge (capture_before; about 7
    # days for an online payment, less for some networks and for a re-authorization);
    # AUTHORIZATION_VALIDITY counts from the authorization only where Stripe gives none.
    # Ops are reminded AUTHORIZATION_REMINDER before; an order not shipped by then is
    # cancelled (the authorization released) or re-authorized off-session with the card
    # the first payment saved (the customer is not asked again: a card that wants them
    # to authenticate cancels the order, the new authorization cancelled at Stripe).
    authorization_validity: timedelta = _TIMING.authorization_validity
    authorization_reminder: timedelta = _TIMING.authorization_reminder
    on_authorization_expiry: Literal["cancel", "reauthorize"] = "cancel"
    # A delivered order takes returns for this long (its workflow stays open until then).
    return_window: timedelta = _TIMING.return_window
    # How often the order sweep (a Temporal Schedule the set-up job creates) looks for
    # orders that can still change whose workflow is gone (terminated from the Web UI, say)
    # and resumes them. A command or a webhook for such an order resumes it at once; the
    # sweep finds the ones nobody asks about. The local stack runs it every 30 s.
    order_sweep_interval: timedelta = Field(
        default=timedelta(minutes=5), ge=timedelta(seconds=10), le=timedelta(days=1)
    )

    # Bearer token for the ops endpoints (/api/ops/...).
    # Empty: the ops API is off. The local stack sets the well-known development tokens
    # for its own processes; nothing else ever falls back to them.
    ops_api_token: SecretStr = SecretStr("")
    # Token for the codec server (/codec): as a bearer token (CLI), or as the last path
    # segment of the endpoint URL given to the Temporal Web UI, which sends no header.
    codec_auth_token: SecretStr = SecretStr("")

    # "id:base64key[,id:base64key...]": AES-GCM keys for Temporal payloads; the first
    # encrypts, all decrypt. Empty means payloads are not encrypted (development only).
    payload_encryption_keys: SecretStr = SecretStr("")

    # Browser origins allowed by CORS: the shop's frontend, and the Temporal Web UI for the
    # codec endpoint only. Comma-separated.
    frontend_origins: str = "http://localhost:4200,http://127.0.0.1:4200"
    temporal_ui_origins: str = "http://localhost:8233,http://127.0.0.1:8233"

    # Where the worker serves Prometheus metrics (Temporal SDK and the service's counters).
    worker_metrics_address: str = "127.0.0.1:9464"
    # Where an API process serves its own counters ("host:port", an internal interface);
    # empty: not served. Never on the public API port.
    api_metrics_address: str = ""
    # Workflows kept in the worker's memory between tasks (docs/performance.md); the
    # worker also runs at most this many workflow tasks at once (up to 100), so a busy
    # worker never evicts a workflow it is running.
    worker_max_cached_workflows: int = Field(default=64, ge=2, le=100_000)
    # Worker Versioning (docs/operations.md, "Deploying new code"): every worker polls as
    # one build of one Worker Deployment. The build id defaults to the release
    # (`<version>+g<commit>`, vult/release.py); a deploy pipeline may set its own.
    worker_deployment_name: str = Field(default="vult-orders", min_length=1, max_length=200)
    worker_build_id: str = Field(default_factory=default_build_id, min_length=1, max_length=200)
    # Whether a worker makes its own build the deployment's current one when it starts:
    # "first" only when the deployment has no current build yet (the first install),
    # "always" (the local stack: the code you just started is the code that runs),
    # "unless-superseded" (the local stack's restarts: unless the current build is newer, by
    # the server's create time, or replaced this one: a rollback or a promotion stays),
    # "never" (every promotion by hand: ramp, then set current).
    worker_promote: Literal["first", "always", "unless-superseded", "never"] = "first"

    # What the order tells (docs/events.md). Customer e-mails: the shop's name and page
    # in every mail (an order's page is SHOP_URL/orders/<id>), and where mail is sent from.
    shop_name: str = Field(default="Vult", min_length=1, max_length=100)
    shop_url: str = "http://127.0.0.1:8000"
    mail_from: str = "Vult <orders@vult.localhost>"
    # The SMTP server customer e-mails go through; empty: no e-mails are sent.
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # A folder of the shop's own mail templates (activities/mail_templates/ names them);
    # a template found there replaces the packaged one. Empty: the packaged ones.
    mail_templates_dir: str = ""
    # The shop's systems that get webhooks (Standard Webhooks), as JSON: [{"name":
    # "warehouse", "url": "https://...", "secret": "whsec_...", "events": ["order.paid"]
    # or ["*"]}]. Empty: none.
    webhook_endpoints: list[WebhookEndpoint] = []
    # One webhook try: the whole request, answer included, must take no longer.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Seconds between one delivery try and the next (a webhook or an e-mail); after the
    # last, the delivery is failed (counted and alerted). The default tries 13 times over
    # about four days.
    delivery_retry_delays: list[float] = Field(
        default=list(DEFAULT_RETRY_DELAYS), min_length=1, max_length=50
    )
    # Delivery tries one worker makes at once (each bounded by its timeout); more wait.
    delivery_max_concurrent_tries: int = Field(default=20, ge=1, le=1000)

    @field_validator("webhook_endpoints")
    @classmethod
    def _endpoint_names_unique(cls, v: list[WebhookEndpoint]) -> list[WebhookEndpoint]:
        names = [e.name for e in v]
        if len(set(names)) != len(names):
            raise ValueError("WEBHOOK_ENDPOINTS: each endpoint needs a name of its own")
        return v

    @field_validator("delivery_retry_delays")
    @classmethod
    def _delays_positive(cls, v: list[float]) -> list[float]:
        if any(d <= 0 or d > 7 * 86400 for d in v):
            raise ValueError(
                "DELIVERY_RETRY_DELAYS: each delay is seconds, above 0, at most 7 days"
            )
        return v

    @field_validator("currency")
    @classmethod
    def _currency_is_iso(cls, v: str) -> str:
        if len(v) != 3 or not v.isalpha():
            raise ValueError("CURRENCY must be a three-letter ISO 4217 code")
        if currency_exponent(v) != 2:
            # Prices, totals and the schema's numeric(18,2) columns are in hundredths, and
            # tax is rounded to the cent (spec 3.2): a currency with another minor unit
            # would be charged amounts that are not whole minor units.
            raise ValueError(
                f"CURRENCY {v.upper()} has {currency_exponent(v)} decimal places; this service "
                "prices in currencies with two (USD, EUR, GBP, ...)"
            )
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
        return async_url(v)

    @field_validator(
        "payment_window",
        "payment_reconcile_after",
        "payment_reconcile_max_interval",
        "cancelled_grace_period",
        "attention_retry",
        "dispute_reminder",
        "authorization_validity",
        "authorization_reminder",
        "return_window",
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
            attention_retry=self.attention_retry,
            dispute_reminder=self.dispute_reminder,
            authorization_validity=self.authorization_validity,
            authorization_reminder=self.authorization_reminder,
            on_authorization_expiry=self.on_authorization_expiry,
            return_window=self.return_window,
        )

    @property
    def delivery_task_queue(self) -> str:
        return self.temporal_delivery_task_queue or f"{self.temporal_task_queue}-deliveries"

    def pricing(self) -> Pricing:
        return Pricing(self.tax_rate, self.shipping_cost, self.currency)

    @property
    def is_production(self) -> bool:
        return self.environment.lower() == "production"

    @staticmethod
    def origins(value: str) -> list[str]:
        return [o.strip() for o in value.split(",") if o.strip()]

    @model_validator(mode="after")
    def _admission_leaves_new_orders_a_place(self) -> Settings:
        if self.api_places_kept_for_started_orders >= self.api_max_commands_in_flight:
            raise ValueError(
                "API_PLACES_KEPT_FOR_STARTED_ORDERS must be below API_MAX_COMMANDS_IN_FLIGHT"
                " (else no new order is ever admitted)"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        """Outside development, a placeholder or missing secret refuses to start."""
        if not self.is_production:
            return self
        problems = []
        if not is_real_stripe_secret_key(self.stripe_secret_key.get_secret_value()):
            problems.append("STRIPE_SECRET_KEY must be a real Stripe secret key")
        if not self.stripe_publishable_key.startswith("pk_") or (
            self.stripe_publishable_key == LOCAL_STRIPE_PUBLISHABLE_KEY
        ):
            problems.append("STRIPE_PUBLISHABLE_KEY must be a real Stripe publishable key")
        webhook = self.stripe_webhook_secret.get_secret_value()
        if not webhook.startswith("whsec_") or webhook == LOCAL_WEBHOOK_SECRET:
            problems.append("STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret")
        ops = self.ops_api_token.get_secret_value()
        if len(ops) < 32 or ops == LOCAL_OPS_API_TOKEN:
            problems.append("OPS_API_TOKEN must be a random token of at least 32 characters")
        codec = self.codec_auth_token.get_secret_value()
        if len(codec) < 32 or codec == LOCAL_CODEC_AUTH_TOKEN:
            problems.append("CODEC_AUTH_TOKEN must be a random token of at least 32 characters")
        if not self.payload_encryption_keys.get_secret_value():
            problems.append("PAYLOAD_ENCRYPTION_KEYS must hold at least one key")
        else:
            try:
                parse_keys(self.payload_encryption_keys.get_secret_value())
            except KeyConfigError as exc:
                problems.append(f"PAYLOAD_ENCRYPTION_KEYS: {exc}")
        if "*" in self.origins(self.frontend_origins):
            problems.append("FRONTEND_ORIGINS must name the frontend's origins, not *")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
