"""The emulator's money after the charge, as Stripe's test mode has it (development only).

Stock localstripe makes refunds but sends no event for them, knows no disputes, and sends
nothing when a 3-D Secure PaymentIntent waits for, passes or fails authentication. Added
here, in the emulator's own process:

- every refund (ours, a "Dashboard" one made straight on the API, a partial capture's)
  sends `charge.refunded` (the charge) and `refund.created` (the refund), and names its
  PaymentIntent as Stripe's refunds do;
- disputes: `GET /v1/disputes` (filters `payment_intent`, `charge`) and
  `GET /v1/disputes/{id}`. A charge paid with card 4000 0000 0000 0259 succeeds, then a
  dispute of its full amount opens (`needs_response`, evidence due in 7 days) with
  `charge.dispute.created` and `charge.dispute.funds_withdrawn`, as in Stripe's test mode;
- test controls, authorised by a secret key: `POST /_vult/charges/{id}/dispute` (a
  dispute of that charge opens now, as a cardholder's bank can open one at any time),
  `POST /_vult/disputes/{id}/close` with
  `{"outcome": "won"|"lost"}` (won: `funds_reinstated`, then `closed`; lost: `closed`), and
  `POST /_vult/refunds/{id}/fail` (the refund fails later, as a bank can make it:
  `charge.refund.updated` and `refund.failed`);
- `POST /_vult/refuse_key` `{"key", "seconds"}`: that secret key is answered 401 (as a
  rotated or revoked key is) for so many seconds (the chaos suite's fault);
- `GET /v1/webhook_endpoints`: the webhooks registered through `/_config/webhooks`, as
  Stripe lists an account's endpoints (their URL and enabled events), for the set-up job's
  check;
- `payment_intent.requires_action` when a confirmation needs 3-D Secure (the challenge
  itself is the Stripe.js stand-in's: dev/stack/stripe_js.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

DISPUTED_CARD = "4000000000000259"
_EVIDENCE_DAYS = 7
_DISPUTE_AFTER_SECONDS = 1.5  # its events after the success event's, as at Stripe


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


def install(app: web.Application, resources: Any, errors: Any) -> type:
    """Patch the emulator's resources and put the routes in front of localstripe's own.
    Returns the Dispute class (its objects live in the emulator's store)."""
    schedule = resources.schedule_webhook
    Event = resources.Event

    class Dispute(resources.StripeObject):  # type: ignore[misc]
        object = "dispute"
        _id_prefix = "dp_"

        def __init__(self, charge: Any) -> None:
            super().__init__()
            self.amount = charge.amount
            self.currency = charge.currency
            self.charge = charge.id
            self.payment_intent = charge.payment_intent
            self.status = "needs_response"
            self.reason = "fraudulent"
            self.is_charge_refundable = False
            self.metadata: dict[str, str] = {}
            self.evidence_details = {
                "due_by": int(time.time()) + _EVIDENCE_DAYS * 86400,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            }

        @classmethod
        def _api_list_all(
            cls,
            url: str,
            payment_intent: str | None = None,
            charge: str | None = None,
            limit: Any = None,
            starting_after: Any = None,
        ) -> Any:
            listed = super()._api_list_all(url, limit=limit, starting_after=starting_after)
            listed._list = [
                d
                for d in listed._list
                if payment_intent in (None, d.payment_intent) and charge in (None, d.charge)
            ]
            listed._list.sort(key=lambda d: d.created, reverse=True)
            return listed

    # Pickled with the store: found again here when the store is loaded.
    Dispute.__module__, Dispute.__qualname__ = __name__, "Dispute"
    globals()["Dispute"] = Dispute
    resources.Dispute = Dispute

    def open_dispute(charge: Any, delay: float = 0.0) -> Any:
        """The dispute exists at once (and is saved with the store); its events are sent
        `delay` seconds later, after the charge's own."""
        charge.disputed = True
        dispute = Dispute(charge)
        for kind in ("charge.dispute.created", "charge.dispute.funds_withdrawn"):
            event = Event(kind, dispute)
            asyncio.get_event_loop().call_later(delay, schedule, event)
        return dispute

    original_success = resources.PaymentIntent._on_success

    def on_success(intent: Any) -> None:
        original_success(intent)
        charge = intent.latest_charge
        method = resources.PaymentMethod._api_retrieve(charge.payment_method)
        if getattr(method, "_card_number", None) == DISPUTED_CARD:
            open_dispute(charge, _DISPUTE_AFTER_SECONDS)

    resources.PaymentIntent._on_success = on_success

    original_refund_init = resources.Refund.__init__

    def refund_init(refund: Any, *args: Any, **kwargs: Any) -> None:
        original_refund_init(refund, *args, **kwargs)
        charge = resources.Charge._api_retrieve(refund.charge)
        refund.payment_intent = refund.payment_intent or charge.payment_intent
        schedule(Event("charge.refunded", charge))
        schedule(Event("refund.created", refund))

    resources.Refund.__init__ = refund_init

    original_confirm = resources.PaymentIntent._confirm

    def confirm(intent: Any, on_failure_now: Any) -> None:
        original_confirm(intent, on_failure_now)
        if intent.status == "requires_action":
            schedule(Event("payment_intent.requires_action", intent))

    resources.PaymentIntent._confirm = confirm

    def secret_key(request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer sk_") and len(header) > len("Bearer sk_")

    async def dispute_charge(request: web.Request) -> web.Response:
        if not secret_key(request):
            return _error(401, "A secret key is required")
        try:
            charge = resources.Charge._api_retrieve(request.match_info["id"])
        except errors.UserError:
            return _error(404, "No such charge")
        if not (charge.status == "succeeded" and charge.captured):
            return _error(400, "Not a paid charge")
        return web.json_response(open_dispute(charge)._export())

    async def close_dispute(request: web.Request) -> web.Response:
        if not secret_key(request):
            return _error(401, "A secret key is required")
        try:
            outcome = (await request.json()).get("outcome")
            dispute = Dispute._api_retrieve(request.match_info["id"])
        except (ValueError, AttributeError, errors.UserError):
            return _error(404, "No such dispute")
        if outcome not in ("won", "lost") or dispute.status in ("won", "lost"):
            return _error(400, "Bad request")
        dispute.status = outcome
        if outcome == "won":
            schedule(Event("charge.dispute.funds_reinstated", dispute))
        schedule(Event("charge.dispute.closed", dispute))
        return web.json_response(dispute._export())

    async def fail_refund(request: web.Request) -> web.Response:
        if not secret_key(request):
            return _error(401, "A secret key is required")
        try:
            refund = resources.Refund._api_retrieve(request.match_info["id"])
        except errors.UserError:
            return _error(404, "No such refund")
        refund.status = "failed"
        refund.failure_reason = "lost_or_stolen_card"
        schedule(Event("charge.refund.updated", refund))
        schedule(Event("refund.failed", refund))
        return web.json_response(refund._export())

    async def webhook_endpoints(request: web.Request) -> web.Response:
        if not secret_key(request):
            return _error(401, "A secret key is required")
        from localstripe.webhooks import _webhooks

        data = [
            {
                "id": f"we_{name}",
                "object": "webhook_endpoint",
                "url": hook.url,
                "status": "enabled",
                "enabled_events": sorted(hook.events) if hook.events is not None else ["*"],
            }
            for name, hook in _webhooks.items()
        ]
        listed = {"object": "list", "url": "/v1/webhook_endpoints", "has_more": False}
        return web.json_response({**listed, "data": data})

    refused_keys: dict[str, float] = {}  # secret key -> refused until (monotonic)

    async def refuse_key(request: web.Request) -> web.Response:
        if not secret_key(request):
            return _error(401, "A secret key is required")
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

    from localstripe import server

    for method, url, route in (
        ("GET", "/v1/disputes", server.api_list_all),
        ("GET", "/v1/disputes/{id}", server.api_retrieve),
    ):
        app.router.add_route(method, url, route(Dispute, url))
    app.router.add_route("GET", "/v1/webhook_endpoints", webhook_endpoints)
    app.router.add_route("POST", "/_vult/refuse_key", refuse_key)
    app.router.add_route("POST", "/_vult/charges/{id}/dispute", dispute_charge)
    app.router.add_route("POST", "/_vult/disputes/{id}/close", close_dispute)
    app.router.add_route("POST", "/_vult/refunds/{id}/fail", fail_refund)
    return Dispute
