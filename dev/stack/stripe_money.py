"""The emulator's money after the charge, as Stripe's test mode has it (development only).

Stock localstripe makes refunds but sends no event for them, knows no disputes, and sends
nothing when a 3-D Secure PaymentIntent waits for, passes or fails authentication. Added
here, in the emulator's own process:

- refunds as Stripe has them (their events, pending and failing refunds, the refund test
  cards and controls): dev/stack/stripe_refunds.py;
- disputes, inquiries and chargebacks, every status of the pinned API version (the dispute
  test cards and controls): dev/stack/stripe_disputes.py;
- `POST /_vult/refuse_key` `{"key", "seconds"}`: that secret key is answered 401 (as a
  rotated or revoked key is) for so many seconds (the chaos suite's fault);
- `payment_intent.requires_action` when a confirmation needs 3-D Secure (the challenge
  itself is the Stripe.js stand-in's: dev/stack/stripe_js.py).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from dev.stack import stripe_disputes, stripe_refunds
from dev.stack.stripe_controls import secret_key
from dev.stack.stripe_refunds import control_error


def install(app: web.Application, resources: Any, errors: Any) -> type:
    """Patch the emulator's resources and put the routes in front of localstripe's own.
    Returns the Dispute class (its objects live in the emulator's store)."""
    schedule = resources.schedule_webhook
    Event = resources.Event
    stripe_refunds.install(app, resources, errors)
    Dispute = stripe_disputes.install(app, resources, errors)
    # A store saved before disputes had their own module names them here.
    globals()["Dispute"] = Dispute

    original_confirm = resources.PaymentIntent._confirm

    def confirm(intent: Any, on_failure_now: Any) -> None:
        original_confirm(intent, on_failure_now)
        if intent.status == "requires_action":
            schedule(Event("payment_intent.requires_action", intent))

    resources.PaymentIntent._confirm = confirm

    refused_keys: dict[str, float] = {}  # secret key -> refused until (monotonic)

    async def refuse_key(request: web.Request) -> web.Response:
        if not secret_key(request):
            return control_error(401, "A secret key is required")
        body = await request.json()
        refused_keys[str(body["key"])] = time.monotonic() + float(body["seconds"])
        return web.json_response({"refused": body["key"][:12] + "..."})

    @web.middleware
    async def refusing(request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.path.startswith("/v1/") and refused_keys.get(key, 0) > time.monotonic():
            error = {"type": "invalid_request_error", "message": "Invalid API Key provided"}
            return web.json_response({"error": error}, status=401)
        return await handler(request)  # type: ignore[no-any-return]

    app.middlewares.insert(0, refusing)

    app.router.add_route("POST", "/_vult/refuse_key", refuse_key)
    return Dispute
