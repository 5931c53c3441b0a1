"""localstripe, the stateful Stripe emulator, with the project's webhook registered on it."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from dev.stack.procs import Child, Children, wait_for_port
from vult.domain.stripe_events import HANDLED

ROOT = Path(__file__).resolve().parents[2]


def start_localstripe(
    children: Children,
    *,
    port: int,
    log: Path | None,
    state_file: Path | None,
    idempotency_key_seconds: float | None = None,
) -> Child:
    """The emulator; its objects survive a restart only with a state file. Idempotency keys
    last 24 hours, as at Stripe, unless `idempotency_key_seconds` says otherwise."""
    cmd = [sys.executable, "-m", "dev.stack.localstripe_server", "--port", str(port)]
    if idempotency_key_seconds is not None:
        cmd += ["--idempotency-key-seconds", str(idempotency_key_seconds)]
    if state_file is not None:
        cmd += ["--state-file", str(state_file)]
    child = children.start("localstripe", cmd, log=log, cwd=ROOT)
    child.ready = lambda started: wait_for_port(started, port, timeout=30)
    child.ready(child)
    return child


def register_webhook(api_base: str, *, name: str, url: str, secret: str) -> None:
    """Ask the emulator to sign and send our events to `url` with `secret`, as endpoint
    `we_{name}` at the API version the `stripe` package pins (listed so by
    `GET /v1/webhook_endpoints`: dev/stack/stripe_endpoints.py). Registering the same name
    again re-points that endpoint (a lost-webhook test, a restarted emulator).

    Through `/_config/webhooks/{name}`, not `POST /v1/webhook_endpoints`: Stripe generates an
    endpoint's secret itself, while the stack, its API and the tests are configured with
    theirs beforehand."""
    response = httpx.post(
        f"{api_base}/_config/webhooks/{name}",
        json={"url": url, "secret": secret, "events": sorted(HANDLED)},
        timeout=10,
    )
    response.raise_for_status()
