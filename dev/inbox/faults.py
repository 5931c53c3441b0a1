"""The faults the inbox plays, set through POST /api/faults (until changed or restarted):

{"smtp": "ok"}                          accept every message
{"smtp": "transient"}                   every RCPT: 451 4.3.0 (the sender tries later)
{"smtp": {"refuse": "a@example.com"}}   that address (or a list): 550 5.1.1 for good
{"webhook": {"endpoint": "local-receiver", "status": 503, "delaySeconds": 0}}
                                        that endpoint answers 503 (410: gone for good;
                                        204: as normal), after waiting delaySeconds
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_DELAY_SECONDS = 300.0
TRANSIENT = "451 4.3.0 Mail system temporarily unavailable, try again later (inbox fault)"
REFUSED = "550 5.1.1 Recipient address rejected: no such user (inbox fault)"


class FaultError(ValueError):
    """A fault the inbox cannot play; the API answers 400 with its text."""


@dataclass
class WebhookFault:
    status: int = 204
    delay_seconds: float = 0.0


@dataclass
class Faults:
    smtp: str = "ok"  # "ok", "transient" or "refuse"
    refused: set[str] = field(default_factory=set)  # lower case
    webhooks: dict[str, WebhookFault] = field(default_factory=dict)

    def rcpt_refusal(self, address: str) -> str | None:
        """The SMTP answer refusing RCPT TO `address`, or None to accept it."""
        if self.smtp == "transient":
            return TRANSIENT
        if self.smtp == "refuse" and address.strip().lower() in self.refused:
            return REFUSED
        return None

    def reset(self) -> None:
        """No fault at all: mail accepted, every endpoint answering as normal."""
        self.smtp, self.refused, self.webhooks = "ok", set(), {}

    def webhook(self, endpoint: str) -> WebhookFault:
        return self.webhooks.get(endpoint, WebhookFault())

    def apply(self, body: object) -> None:
        """Set the faults `body` names, leaving the others as they were."""
        if not isinstance(body, dict) or not body.keys() <= {"smtp", "webhook"}:
            raise FaultError('expected {"smtp": ...} and/or {"webhook": {...}}')
        if "smtp" in body:
            self._set_smtp(body["smtp"])
        if "webhook" in body:
            self._set_webhook(body["webhook"])

    def as_json(self) -> dict[str, Any]:
        smtp: Any = {"refuse": sorted(self.refused)} if self.smtp == "refuse" else self.smtp
        hooks = [
            {"endpoint": name, "status": f.status, "delaySeconds": f.delay_seconds}
            for name, f in sorted(self.webhooks.items())
        ]
        return {"smtp": smtp, "webhooks": hooks}

    def _set_smtp(self, value: object) -> None:
        if value in ("ok", "transient"):
            self.smtp, self.refused = str(value), set()
            return
        refuse = value.get("refuse") if isinstance(value, dict) and len(value) == 1 else None
        addresses = [refuse] if isinstance(refuse, str) else refuse
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise FaultError('smtp: "ok", "transient" or {"refuse": "address" or [addresses]}')
        self.smtp, self.refused = "refuse", {a.strip().lower() for a in addresses}

    def _set_webhook(self, value: object) -> None:
        if not isinstance(value, dict) or not isinstance(value.get("endpoint"), str):
            raise FaultError('webhook: {"endpoint": name, "status": 503, "delaySeconds": 0}')
        status, delay = value.get("status", 204), value.get("delaySeconds", 0)
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
            raise FaultError("webhook status: an HTTP status, 200 to 599")
        if not isinstance(delay, int | float) or not 0 <= delay <= MAX_DELAY_SECONDS:
            raise FaultError(f"webhook delaySeconds: 0 to {MAX_DELAY_SECONDS:.0f}")
        fault = WebhookFault(status, float(delay))
        if fault == WebhookFault():
            self.webhooks.pop(value["endpoint"], None)
        else:
            self.webhooks[value["endpoint"]] = fault
