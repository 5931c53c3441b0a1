"""What the order's outbound deliveries are configured with: the shop's webhook endpoints
(Standard Webhooks secrets) and the tries' spacing."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from vult.domain.order_events import EMAIL_TARGET, OrderEventType

# 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, 12 h, then a day three times: 13 tries
# over 3.9 days (Standard Webhooks asks for retries with backoff over days).
DEFAULT_RETRY_DELAYS: Final = (
    5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0, 86400.0, 86400.0, 86400.0
)  # fmt: skip

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
ALL_EVENTS: Final = "*"


class WebhookEndpoint(BaseModel):
    """One of the shop's systems: where its webhooks go, its secret, the events it wants."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    url: str = Field(max_length=2000)
    secret: SecretStr
    events: list[str] = Field(default=[ALL_EVENTS], min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v) or v == EMAIL_TARGET:
            raise ValueError(
                "an endpoint name is 1-50 lowercase letters, digits and dashes (not 'email')"
            )
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an endpoint url is http(s)://host/...")
        if parts.username or parts.password:
            raise ValueError("an endpoint url carries no credentials (the secret signs)")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        try:
            key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not raw.startswith("whsec_") or not 24 <= len(key) <= 64:
            raise ValueError(
                "an endpoint secret is whsec_ and the base64 of 24 to 64 random bytes "
                "(Standard Webhooks)"
            )
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        known = {t.value for t in OrderEventType} | {ALL_EVENTS}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {sorted(known)}")
        return v

    def wants(self, kind: str) -> bool:
        return ALL_EVENTS in self.events or kind in self.events
