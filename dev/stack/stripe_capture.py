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
- a test control, authorised by a secret key: `POST /_vult/payment_intents/{id}/expire`
  (the authorization lapses, as Stripe's does after about 7 days: the PaymentIntent is
  canceled, `payment_intent.canceled`, and a capture is refused).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


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

    def secret_key(request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer sk_") and len(header) > len("Bearer sk_")

    async def expire(request: web.Request) -> web.Response:
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
        intent._canceled = True
        intent.cancellation_reason = "automatic"
        schedule(Event("payment_intent.canceled", intent))
        return web.json_response(intent._export())

    app.router.add_post("/_vult/payment_intents/{id}/expire", expire)
