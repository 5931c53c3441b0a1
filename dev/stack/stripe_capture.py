"""Manual capture in the emulator, as Stripe has it today (development only).

Stock localstripe authorizes a `capture_method=manual` PaymentIntent (`requires_capture`)
and captures it with `amount_to_capture`, but then records the uncaptured rest as a
refund (Stripe's behaviour of years ago), reports no `amount_capturable`,
`amount_received` or `amount_captured`, and sends no event for the authorization or the
capture. Added here, in the emulator's own process:

- a partial capture releases the rest of the authorization: the charge's
  `amount_captured` is what was captured, and no refund is made;
- `payment_intent.amount_capturable`, `payment_intent.amount_received` and
  `charge.amount_captured`, as Stripe reports them;
- `payment_intent.amount_capturable_updated` when a confirmation leaves the PaymentIntent
  `requires_capture`, and `charge.captured` (then `payment_intent.succeeded`) on capture;
- the hold's end, as "Place a hold on a payment method"
  (docs.stripe.com/payments/place-a-hold-on-a-payment-method) has it: an authorization the
  customer made online is valid 7 days, a merchant-initiated one (off-session) 4 days and
  18 hours for Visa, which every emulator card is; `hold_ends` says when, and the charge
  shows it as `payment_method_details.card.capture_before` (dev/stack/stripe_cards.py sets
  it). Once it has passed, the authorization has lapsed as at Stripe: the PaymentIntent is
  canceled (`payment_intent.canceled`) and a capture is refused;
- test controls, authorised by a secret key: `POST /_vult/payment_intents/{id}/expire`
  (the authorization lapses now) and `POST /_vult/payment_intents/{id}/age`
  `{"seconds": N}` (the authorization is N seconds older: past its end, it lapses), and
  `POST /_vult/payment_intents/{id}/hold` `{"seconds": N}` (its authorization, when made,
  lasts N seconds: for tests of what follows a lapse).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from dev.stack.stripe_controls import secret_key

_DAY, _HOUR = 86400, 3600
# "Authorization validity windows", card-not-present, Visa: 7 days customer-initiated; 5 days
# merchant-initiated, "the exact authorization window is 4 days and 18 hours".
CUSTOMER_INITIATED_HOLD = 7 * _DAY
MERCHANT_INITIATED_HOLD = 4 * _DAY + 18 * _HOUR


def hold_ends(authorized_at: int, *, merchant_initiated: bool, seconds: int | None = None) -> int:
    """When an online card authorization made at `authorized_at` (unix seconds) lapses: its
    `capture_before`. Off-session payments are the merchant-initiated ones; `seconds` (the
    `/hold` control's, for tests of what follows a lapse) overrides the window."""
    window = MERCHANT_INITIATED_HOLD if merchant_initiated else CUSTOMER_INITIATED_HOLD
    return authorized_at + (window if seconds is None else seconds)


def install(app: web.Application, resources: Any, errors: Any) -> None:
    schedule = resources.schedule_webhook
    Event = resources.Event
    Charge, PaymentIntent = resources.Charge, resources.PaymentIntent

    def capture(charge: Any, amount: Any, on_success: Any = None) -> None:
        wanted = charge.amount if amount is None else resources.try_convert_to_int(amount)
        if not (
            isinstance(wanted, int)
            and 0 < wanted <= charge.amount
            and charge.captured is False
            and charge.status == "succeeded"
        ):
            raise errors.UserError(400, "This PaymentIntent could not be captured")
        intent = (
            PaymentIntent._api_retrieve(charge.payment_intent) if charge.payment_intent else None
        )
        if intent is not None and not intent._canceled and hold_over(charge):
            lapse(intent)
        if intent is not None and intent._canceled:  # a lapsed (or released) authorization
            raise errors.UserError(
                400, "This PaymentIntent could not be captured because it has a status of canceled"
            )

        def captured() -> None:
            charge.captured = True
            charge._amount_captured = wanted
            schedule(Event("charge.captured", charge))
            if on_success:
                on_success()

        charge._trigger_payment(on_success=captured)

    Charge._capture = capture

    def hold_over(charge: Any) -> bool:
        ends = getattr(charge, "_capture_before", None)
        return isinstance(ends, int) and time.time() >= ends

    def lapse(intent: Any) -> None:
        """The authorization has lapsed: Stripe releases it and cancels the PaymentIntent."""
        intent._canceled = True
        intent.cancellation_reason = "automatic"
        schedule(Event("payment_intent.canceled", intent))

    def amount_captured(charge: Any) -> int:
        if not charge.captured or charge.status != "succeeded":
            return 0
        return int(getattr(charge, "_amount_captured", None) or charge.amount)

    Charge.amount_captured = property(amount_captured)

    def amount_capturable(intent: Any) -> int:
        if intent.status != "requires_capture":
            return 0
        return int(intent.latest_charge.amount)

    def amount_received(intent: Any) -> int:
        if intent.status != "succeeded" or intent.latest_charge is None:
            return 0
        return amount_captured(intent.latest_charge)

    PaymentIntent.amount_capturable = property(amount_capturable)
    PaymentIntent.amount_received = property(amount_received)

    original_confirm = PaymentIntent._confirm

    def confirm(intent: Any, on_failure_now: Any) -> None:
        original_confirm(intent, on_failure_now)
        if intent.status == "requires_capture":
            schedule(Event("payment_intent.amount_capturable_updated", intent))

    PaymentIntent._confirm = confirm

    async def authorized(request: web.Request) -> Any:
        """The PaymentIntent the control names, if it holds an authorization; else the
        answer to give."""
        if not secret_key(request):
            return web.json_response({"error": {"message": "a secret key"}}, status=401)
        try:
            intent = PaymentIntent._api_retrieve(request.match_info["id"])
        except errors.UserError as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=404)
        if intent.status != "requires_capture":
            return web.json_response(
                {"error": {"message": f"{intent.id} is {intent.status}, not authorized"}},
                status=400,
            )
        return intent

    async def expire(request: web.Request) -> web.Response:
        intent = await authorized(request)
        if isinstance(intent, web.Response):
            return intent
        lapse(intent)
        return web.json_response(intent._export())

    async def age(request: web.Request) -> web.Response:
        intent = await authorized(request)
        if isinstance(intent, web.Response):
            return intent
        try:
            seconds = int((await request.json())["seconds"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": {"message": "JSON {seconds: N}"}}, status=400)
        charge = intent.latest_charge
        ends = getattr(charge, "_capture_before", None)
        if not isinstance(ends, int):  # authorized before the hold's end was kept
            ends = hold_ends(charge.created, merchant_initiated=False)
        charge._capture_before = ends - seconds
        if hold_over(charge):
            lapse(intent)
        return web.json_response(intent._export())

    app.router.add_post("/_vult/payment_intents/{id}/expire", expire)

    async def hold(request: web.Request) -> web.Response:
        """`{"seconds": N}`: the PaymentIntent's authorization, when it is made, lasts N
        seconds (a test of what follows a lapse cannot wait days)."""
        if not secret_key(request):
            return web.json_response({"error": {"message": "a secret key"}}, status=401)
        seconds = (await request.json()).get("seconds")
        try:
            intent = PaymentIntent._api_retrieve(request.match_info["id"])
        except errors.UserError as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=404)
        if not (isinstance(seconds, int) and seconds > 0):
            return web.json_response({"error": {"message": "JSON {seconds: N}"}}, status=400)
        intent._hold_seconds = seconds
        return web.json_response({"seconds": seconds})

    app.router.add_post("/_vult/payment_intents/{id}/age", age)
    app.router.add_post("/_vult/payment_intents/{id}/hold", hold)
