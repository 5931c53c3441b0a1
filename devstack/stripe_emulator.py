"""localstripe, the stateful Stripe emulator, with the project's webhook registered on it."""

from __future__ import annotations

from pathlib import Path

import httpx

from devstack.procs import BIN, Child, Children, wait_for_port

WEBHOOK_EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "charge.refunded",
]


def start_localstripe(
    children: Children, *, port: int, log: Path | None, from_scratch: bool
) -> Child:
    cmd = [str(BIN / "localstripe"), "--port", str(port)]
    if from_scratch:
        cmd.append("--from-scratch")
    child = children.start("localstripe", cmd, log=log)
    wait_for_port(child, port, timeout=30)
    return child


def register_webhook(api_base: str, *, name: str, url: str, secret: str) -> None:
    """Ask the emulator to sign and send our events to `url`, as a Stripe dashboard would."""
    response = httpx.post(
        f"{api_base}/_config/webhooks/{name}",
        json={"url": url, "secret": secret, "events": WEBHOOK_EVENTS},
        timeout=10,
    )
    response.raise_for_status()
