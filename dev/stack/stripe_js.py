"""The emulator's Stripe.js stand-in, completed for the checkout page (development only).

localstripe serves a Stripe.js stand-in at /js.stripe.com/v3/ whose Card Element and
createToken work, but whose confirmCardPayment never uses the card and whose
createPaymentMethod does nothing. This adds, in the emulator's own process:

- GET /js.stripe.com/v3/: localstripe's script followed by dev/stack/stripe_js_standin.js;
- GET /js.stripe.com/<release>/stripe.js, for the release the `stripe` package pins (e.g.
  endive): the same, at that release. Stripe.js is versioned by release name like the API
  ("Stripe.js versioning", docs.stripe.com/sdks/stripejs-versioning), and each release
  speaks its API version, which a page cannot override: the stand-in sends it with each
  request (`_stripe_version`), and the emulator, which renders its objects at that version
  only, refuses another. No other release is served;
- POST /_vult/payment_methods: a card PaymentMethod, authorised by a publishable key;
- POST /_vult/confirm_card_payment: the card attached to the PaymentIntent and confirmed,
  authorised as Stripe.js is, by a publishable key and the PaymentIntent's client secret;
- POST /_vult/payment_intent: the PaymentIntent, read with its client secret;
- POST /_vult/authenticate: the answer to a 3-D Secure challenge (`success` true or false),
  authorised the same way. Stripe.js shows the challenge itself when a card needs it; the
  stand-in shows a dialog like Stripe's test page (Complete / Fail authentication), and
  closing it fails the authentication as Stripe.js reports a closed challenge.

What it does not simulate: Stripe.js's iframes and styling, wallets and Stripe's fraud
checks; a declined card answers as Stripe does (402, card_error), a failed authentication
as Stripe does (payment_intent_authentication_failure, and payment_intent.payment_failed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from stripe._api_version import _ApiVersion

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STANDIN = Path(__file__).with_name("stripe_js_standin.js")
_CLIENT_SECRET = re.compile(r"^(pi_\w+?)_secret_\w+$")
# The Stripe.js release served, and the API version it speaks: the pinned SDK's.
RELEASE, API_VERSION = _ApiVersion.CURRENT_MAJOR, _ApiVersion.CURRENT
VERSIONED_PATH = f"/js.stripe.com/{RELEASE}/stripe.js"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message}}, status=status)


async def _payload(request: web.Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.text())
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    key = data.get("key")
    return data if isinstance(key, str) and key.startswith("pk_") else None


async def _other_version(request: web.Request) -> web.Response | None:
    """Stripe.js at a release sends its API version; the emulator renders no other."""
    try:
        sent = json.loads(await request.text()).get("_stripe_version")
    except (ValueError, AttributeError):
        return None  # the handler answers a body that is not a JSON object
    if sent is None or sent == API_VERSION:
        return None
    message = f"API version {sent!r} is not served here: the emulator renders {API_VERSION}"
    return _error(400, message)


def _card_method(resources: Any, card: dict[str, Any]) -> Any:
    return resources.PaymentMethod._api_create(
        type="card",
        card={name: str(card.get(name, "")) for name in ("number", "exp_month", "exp_year", "cvc")},
    )


def install(app: web.Application, resources: Any, errors: Any) -> None:
    """Put the routes in front of localstripe's own (before its authentication)."""
    original_js = Path(resources.__file__).with_name("localstripe-v3.js")

    async def confirm_card_payment(request: web.Request) -> web.Response:
        data = await _payload(request)
        if data is None:
            return _error(401, "A publishable key is required")
        match = _CLIENT_SECRET.match(str(data.get("client_secret", "")))
        if match is None or not isinstance(data.get("card"), dict):
            return _error(400, "A client secret and a card are required")
        try:
            intent = resources.PaymentIntent._api_retrieve(match[1])
            if intent.client_secret != data["client_secret"]:
                return _error(401, "The client secret does not match the PaymentIntent")
            method = _card_method(resources, data["card"])
            resources.PaymentIntent._api_update(intent.id, payment_method=method.id)
            confirmed = resources.PaymentIntent._api_confirm(intent.id)
        except errors.UserError as exc:  # a declined card is Stripe's 402 card_error
            return web.json_response(exc.body, status=exc.code)
        return web.json_response(confirmed._export())

    async def authenticate(request: web.Request) -> web.Response:
        data = await _payload(request)
        if data is None:
            return _error(401, "A publishable key is required")
        match = _CLIENT_SECRET.match(str(data.get("client_secret", "")))
        if match is None:
            return _error(400, "A client secret is required")
        try:
            intent = resources.PaymentIntent._api_authenticate(
                match[1], client_secret=data["client_secret"], success=data.get("success") is True
            )
        except errors.UserError as exc:
            return web.json_response(exc.body, status=exc.code)
        if intent.status == "requires_payment_method":
            resources.schedule_webhook(resources.Event("payment_intent.payment_failed", intent))
        return web.json_response(intent._export())

    async def payment_intent(request: web.Request) -> web.Response:
        """The PaymentIntent, as Stripe.js reads it with its client secret."""
        data = await _payload(request)
        match = _CLIENT_SECRET.match(str((data or {}).get("client_secret", "")))
        if data is None or match is None:
            return _error(401, "A publishable key and a client secret are required")
        try:
            intent = resources.PaymentIntent._api_retrieve(match[1])
        except errors.UserError as exc:
            return web.json_response(exc.body, status=exc.code)
        if intent.client_secret != data["client_secret"]:
            return _error(401, "The client secret does not match the PaymentIntent")
        return web.json_response(intent._export())

    async def payment_methods(request: web.Request) -> web.Response:
        data = await _payload(request)
        if data is None or not isinstance(data.get("card"), dict):
            return _error(401, "A publishable key and a card are required")
        try:
            method = _card_method(resources, data["card"])
        except errors.UserError as exc:
            return web.json_response(exc.body, status=exc.code)
        return web.json_response(method._export())

    async def stripe_js(_: web.Request) -> web.Response:
        script = original_js.read_text() + "\n" + _STANDIN.read_text()
        return web.Response(text=script, content_type="application/javascript")

    async def versioned_stripe_js(_: web.Request) -> web.Response:
        version = f"const STRIPE_JS_API_VERSION = {json.dumps(API_VERSION)};\n"
        script = version + original_js.read_text() + "\n" + _STANDIN.read_text()
        return web.Response(text=script, content_type="application/javascript")

    routes: dict[tuple[str, str], Handler] = {
        ("GET", "/js.stripe.com/v3/"): stripe_js,
        ("GET", VERSIONED_PATH): versioned_stripe_js,
        ("POST", "/_vult/confirm_card_payment"): confirm_card_payment,
        ("POST", "/_vult/authenticate"): authenticate,
        ("POST", "/_vult/payment_intent"): payment_intent,
        ("POST", "/_vult/payment_methods"): payment_methods,
    }

    @web.middleware
    async def standin(request: web.Request, handler: Handler) -> web.StreamResponse:
        ours = routes.get((request.method, request.path))
        if ours is None:
            return await handler(request)
        if request.method == "POST":
            refused = await _other_version(request)
            if refused is not None:
                return refused
            try:
                return await ours(request)
            finally:
                # Saved before the answer, as the emulator's own writes are: these routes
                # answer ahead of its saving middleware, and a card confirmed or a 3-D
                # Secure challenge answered was lost when the emulator was killed right
                # after (Stripe never forgets what it acknowledged).
                resources.store.dump_to_disk()
        return await ours(request)

    app.middlewares.insert(0, standin)
