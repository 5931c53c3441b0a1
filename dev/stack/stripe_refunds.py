"""Refunds in the emulator as Stripe has them at the pinned API version (development only).

Stock localstripe makes every refund `succeeded` at once, for good, sends no event for it,
and counts every refund in the charge's `amount_refunded`. At Stripe a card refund is
asynchronous (Stripe docs, "Refund and cancel payments" and "Testing: Simulate an
asynchronous refund"): it may be `pending` first and succeed later, or succeed first and
fail later, its money going back to the merchant. Added here, in the emulator's own process:

- every refund sends `charge.refunded` (the charge) and `refund.created` (the refund), and
  names its PaymentIntent, as Stripe's refunds do;
- a refund of card 4000 0000 0000 7726 is `pending` (`pending_reason: processing`) and
  succeeds about 2 s later (`refund.updated`, `charge.refund.updated`); one of card
  4000 0000 0000 5126 is `succeeded`, then fails about 2 s later with
  `expired_or_canceled_card` (`refund.failed`, `charge.refund.updated`): the testing page's
  two asynchronous-refund cards;
- the charge's `amount_refunded` (and so `refunded`) counts pending and succeeded refunds,
  not failed or canceled ones, whose money came back (Refund object, `status`; "Refund and
  cancel payments", failed refunds);
- test controls, authorised by a secret key: `POST /_vult/refunds/{id}/fail` (a pending or
  succeeded refund fails now, as a bank can make it: `lost_or_stolen_card`),
  `POST /_vult/refunds/{id}/succeed` (a pending refund completes now), and
  `POST /_vult/payment_intents/{id}/pending_refunds` with an optional `{"count": n}`: the
  next n refunds of that PaymentIntent (without a count, every later one) are `pending`
  whatever the card, and stay so until one of the two controls above settles them.

`requires_action` (a refund waiting for the customer's details) exists only for payment
methods other than cards, so no emulator refund reaches it; nor `canceled`, which a card
refund reaches only through the Dashboard. A settling timer does not survive a restart of
the emulator: a refund still pending then is settled by the controls.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import web

from dev.stack.stripe_controls import secret_key

PENDING_REFUND_CARD = "4000000000007726"  # "Asynchronous success"
FAILING_REFUND_CARD = "4000000000005126"  # "Asynchronous failure"
SETTLE_SECONDS = 2.0
# What no longer counts in the charge's amount_refunded: its money came back.
UNDONE = frozenset({"failed", "canceled"})


def control_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    """A control's JSON body; none, or one that is not an object, reads as {}."""
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def card_number(resources: Any, charge: Any) -> str | None:
    if not isinstance(charge.payment_method, str):
        return None
    try:
        method = resources.PaymentMethod._api_retrieve(charge.payment_method)
    except resources.UserError:  # a charge of a card or source object, not a PaymentMethod
        return None
    number = getattr(method, "_card_number", None)
    return number if isinstance(number, str) else None


def succeed(resources: Any, refund: Any) -> None:
    """A pending refund completes, as Stripe reports it: `refund.updated` and
    `charge.refund.updated`."""
    refund.status = "succeeded"
    refund.pending_reason = None
    resources.schedule_webhook(resources.Event("charge.refund.updated", refund))
    resources.schedule_webhook(resources.Event("refund.updated", refund))


def fail(resources: Any, refund: Any, reason: str) -> None:
    """The refund fails (its money back to the merchant): `charge.refund.updated` and
    `refund.failed`, with one of the Refund object's `failure_reason` values."""
    refund.status = "failed"
    refund.pending_reason = None
    refund.failure_reason = reason
    resources.schedule_webhook(resources.Event("charge.refund.updated", refund))
    resources.schedule_webhook(resources.Event("refund.failed", refund))


def _held(resources: Any, payment_intent: str | None) -> bool:
    """Whether this refund of `payment_intent` is one the pending_refunds control holds
    (it counts it off)."""
    if payment_intent is None:
        return False
    intent = resources.PaymentIntent._api_retrieve(payment_intent)
    left = getattr(intent, "_pending_refunds_left", 0)
    if left <= 0:
        return False
    intent._pending_refunds_left = left - 1
    return True


def install(app: web.Application, resources: Any, errors: Any) -> None:
    """Patch the Refund and Charge models and add the refund controls."""
    schedule, Event = resources.schedule_webhook, resources.Event
    Charge, Refund = resources.Charge, resources.Refund

    def later(refund: Any, status: str, then: Any) -> None:
        """`then()` in SETTLE_SECONDS, if the refund is still `status` by then."""

        def settle() -> None:
            if refund.status == status:
                then()
                resources.store.dump_to_disk()  # no request follows to save it

        asyncio.get_running_loop().call_later(SETTLE_SECONDS, settle)

    original_init = Refund.__init__

    def init(refund: Any, *args: Any, **kwargs: Any) -> None:
        original_init(refund, *args, **kwargs)
        charge = Charge._api_retrieve(refund.charge)
        refund.payment_intent = refund.payment_intent or charge.payment_intent
        refund.pending_reason = None
        refund.failure_reason = None
        number = card_number(resources, charge)
        if _held(resources, refund.payment_intent):
            refund.status, refund.pending_reason = "pending", "processing"
        elif number == PENDING_REFUND_CARD:
            refund.status, refund.pending_reason = "pending", "processing"
            later(refund, "pending", lambda: succeed(resources, refund))
        elif number == FAILING_REFUND_CARD:
            later(refund, "succeeded", lambda: fail(resources, refund, "expired_or_canceled_card"))
        schedule(Event("charge.refunded", charge))
        schedule(Event("refund.created", refund))

    Refund.__init__ = init

    def amount_refunded(charge: Any) -> int:
        return sum(r.amount for r in charge.refunds._list if r.status not in UNDONE)

    Charge.amount_refunded = property(amount_refunded)

    def refund_of(request: web.Request) -> Any:
        try:
            return Refund._api_retrieve(request.match_info["id"])
        except errors.UserError:
            return None

    async def fail_refund(request: web.Request) -> web.Response:
        if not secret_key(request):
            return control_error(401, "A secret key is required")
        refund = refund_of(request)
        if refund is None:
            return control_error(404, "No such refund")
        if refund.status not in ("pending", "succeeded"):
            return control_error(400, f"{refund.id} is {refund.status}: it cannot fail")
        fail(resources, refund, "lost_or_stolen_card")
        return web.json_response(refund._export())

    async def succeed_refund(request: web.Request) -> web.Response:
        if not secret_key(request):
            return control_error(401, "A secret key is required")
        refund = refund_of(request)
        if refund is None:
            return control_error(404, "No such refund")
        if refund.status != "pending":
            return control_error(400, f"{refund.id} is {refund.status}, not pending")
        succeed(resources, refund)
        return web.json_response(refund._export())

    async def pending_refunds(request: web.Request) -> web.Response:
        if not secret_key(request):
            return control_error(401, "A secret key is required")
        try:
            intent = resources.PaymentIntent._api_retrieve(request.match_info["id"])
        except errors.UserError:
            return control_error(404, "No such payment_intent")
        count = (await json_body(request)).get("count")
        if count is not None and not (type(count) is int and count > 0):
            return control_error(400, "count: a positive integer, or none for every refund")
        intent._pending_refunds_left = math.inf if count is None else count
        return web.json_response({"payment_intent": intent.id, "pending_refunds": count})

    app.router.add_post("/_vult/refunds/{id}/fail", fail_refund)
    app.router.add_post("/_vult/refunds/{id}/succeed", succeed_refund)
    app.router.add_post("/_vult/payment_intents/{id}/pending_refunds", pending_refunds)
