"""Saved cards and payments without the customer, as Stripe has them (development only).

Stock localstripe lets a PaymentMethod pay any number of times, attached or not; knows no
`setup_future_usage`; refuses `off_session` on confirm; and asks for 3-D Secure on every
confirmation of an authentication test card, as if the customer were always there. Added
here, in the emulator's own process, each rule from the Stripe page named:

- "Save payment details during payment" (docs.stripe.com/payments/save-during-payment):
  a PaymentIntent takes `setup_future_usage` (`off_session` | `on_session`); with a
  `customer`, once its confirmation succeeds (or authorizes, for manual capture) its
  PaymentMethod is attached to that customer (`payment_method.attached`). Confirmed
  `off_session` (on create with `confirm=true`, or on `/confirm`), a card that would need
  the customer to authenticate is declined: 402 `card_error`, `code` and `decline_code`
  `authentication_required` (docs.stripe.com/declines/codes); the PaymentIntent asks for
  a payment method again, its `last_payment_error` naming the card (so the customer can
  come back and authenticate it) and `payment_intent.payment_failed` is sent. The emulator
  records no charge for this decline (`latest_charge` is left as it was), so the
  PaymentIntent can be confirmed again.
- The PaymentMethod object and "Attach a PaymentMethod to a Customer"
  (docs.stripe.com/api/payment_methods/attach, .../detach): a PaymentMethod used to confirm
  a PaymentIntent while attached to no Customer, or detached since, may not be used
  again, nor attached; one attached to a Customer pays only PaymentIntents of that
  customer ("If the payment method is attached to a Customer, it must match the customer
  that is set on this PaymentIntent", docs.stripe.com/api/payment_intents/confirm).
- Testing, "Authentication and setup" (docs.stripe.com/testing#authentication-and-setup):
  4000002500003155 needs authentication unless it was set up for off-session use (a
  successful payment with `setup_future_usage=off_session`), then not off-session;
  4000002760003184, 4000000000003220 (and the other 3-D Secure cards localstripe knows)
  always need it; 4000003800000446 is set up already (off-session passes, on-session
  needs authentication). On-session, a card that needs it is `requires_action` as before.
- The hold's end (dev/stack/stripe_capture.py): an uncaptured charge's
  `payment_method_details.card.capture_before`, shorter when off-session.
- `GET /v1/payment_intents?customer=`: a customer's PaymentIntents.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dev.stack.stripe_capture import hold_ends

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALWAYS_AUTHENTICATE = frozenset(
    {
        "4000002760003184",
        "4000000000003220",
        "4000000000003063",
        "4000008260003178",  # then declined: insufficient funds
        "4000008400001629",  # then declined
    }
)
AUTHENTICATE_UNLESS_SET_UP = "4000002500003155"
ALREADY_SET_UP = "4000003800000446"

REUSED = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
    "attachment, shared with a connected account without Customer attachment, or was "
    "detached from a Customer. It may not be used again. To use a PaymentMethod multiple "
    "times, you must attach it to a Customer first."
)
ATTACH_REUSED = (
    "This PaymentMethod was previously used without being attached to a Customer or was "
    "detached from a Customer, and may not be used again."
)
AUTHENTICATION_REQUIRED = "Your card was declined. This transaction requires authentication."
MISSING_PAYMENT_METHOD = (
    "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
    "either update the PaymentIntent with a payment method and then confirm it again, or "
    "confirm it again directly with a payment method or ConfirmationToken."
)

# Whether the confirmation under way was sent with `off_session`: set by the create and
# confirm endpoints around localstripe's own confirmation, read by the card's rules.
_OFF_SESSION: contextvars.ContextVar[bool] = contextvars.ContextVar("off_session", default=False)
_CONFIRM_URL = "/v1/payment_intents/{id}/confirm"
_CARD_DETAILS = ("brand", "country", "exp_month", "exp_year", "fingerprint", "funding", "last4")
_ATTACH_OR_DETACH = re.compile(r"^/v1/payment_methods/([^/]+)/(attach|detach)$")


def needs_authentication(number: str, *, off_session: bool, set_up: bool) -> bool:
    """Whether Stripe's test card `number` asks the customer to authenticate."""
    if number in ALWAYS_AUTHENTICATE:
        return True
    if number == AUTHENTICATE_UNLESS_SET_UP:
        return not (off_session and set_up)
    if number == ALREADY_SET_UP:
        return not off_session
    return False


def off_session_flag(value: object) -> bool | None:
    """`off_session` as Stripe takes it: a boolean, or the older `one_off` / `recurring`."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "one_off", "recurring"):
        return True
    if text == "false":
        return False
    raise ValueError(value)


def install(app: web.Application, resources: Any, errors: Any) -> None:
    """Patch the emulator's resources, rebind its confirm route so that it takes
    `off_session`, and check attach/detach in front of localstripe's routes."""
    from localstripe import server

    PaymentIntent, PaymentMethod = resources.PaymentIntent, resources.PaymentMethod
    schedule, Event = resources.schedule_webhook, resources.Event

    def refused(message: str, **fields: Any) -> Exception:
        error: Exception = errors.UserError(
            400, message, {k: v for k, v in fields.items() if v is not None}
        )
        return error

    def future_usage(value: object, *, unset: bool) -> str | None:
        if value in ("off_session", "on_session") or (unset and value == ""):
            return str(value) or None
        raise refused(f"Invalid setup_future_usage: {value}", param="setup_future_usage")

    # --- whose card may pay --------------------------------------------------------------

    def check_usable(method: Any, customer: object, intent: Any = None) -> None:
        """Refused when the PaymentIntent is created with the card, updated with it, or
        confirmed; the last two answers carry the PaymentIntent."""
        shown = {} if intent is None else {"payment_intent": intent._export()}
        if method.customer is None and getattr(method, "_spent", False):
            raise refused(REUSED, param="payment_method", **shown)
        if method.customer is not None and customer is None:
            raise refused(
                f"The `payment_method` parameter supplied {method.id} belongs to the Customer "
                f"{method.customer}. Please include the Customer in the `customer` parameter "
                "on the PaymentIntent.",
                code="parameter_missing",
                param="customer",
                **shown,
            )
        if method.customer is not None and method.customer != customer:
            raise refused(
                f"The PaymentMethod {method.id} does not belong to the Customer you supplied "
                f"{customer}. Please use this PaymentMethod with the Customer that it "
                "belongs to instead.",
                param="payment_method",
                **shown,
            )

    def check_attachable(method: Any, customer: object) -> None:
        if getattr(method, "_spent", False) and method.customer is None:
            raise refused(ATTACH_REUSED, param="payment_method")
        if method.customer is not None and method.customer != customer:
            raise refused(
                "The payment method you provided has already been attached to a customer.",
                param="payment_method",
            )

    def attach(method: Any, customer: str) -> None:
        method.customer = customer
        schedule(Event("payment_method.attached", method))

    # --- the card's authentication -------------------------------------------------------

    previous_requires = PaymentMethod._requires_authentication

    def requires_authentication(method: Any) -> bool:
        if not isinstance(method, PaymentMethod) or method.type != "card":
            return bool(previous_requires(method))  # legacy cards, sources, SEPA
        return needs_authentication(
            method._card_number,
            off_session=_OFF_SESSION.get(),
            set_up=getattr(method, "_set_up_off_session", False),
        )

    PaymentMethod._requires_authentication = requires_authentication

    def decline_unauthenticated(intent: Any, method: Any) -> None:
        """Off-session, the customer cannot authenticate: Stripe declines at once."""
        error = {
            "code": "authentication_required",
            "decline_code": "authentication_required",
            "doc_url": "https://stripe.com/docs/error-codes/authentication-required",
            "message": AUTHENTICATION_REQUIRED,
            "payment_method": method._export(),
            "payment_method_type": "card",
            "type": "card_error",
        }
        intent._card_error = error
        intent.payment_method = None
        intent.next_action = None
        schedule(Event("payment_intent.payment_failed", intent))
        exc = errors.UserError(402, AUTHENTICATION_REQUIRED, dict(error))
        exc.body["error"].update(type="card_error", payment_intent=intent._export())
        raise exc

    # --- the confirmation ----------------------------------------------------------------

    previous_confirm = PaymentIntent._confirm

    def confirm(intent: Any, on_failure_now: Any) -> None:
        intent._card_error = None
        if intent.payment_method is None:
            raise refused(MISSING_PAYMENT_METHOD, code="payment_intent_unexpected_state")
        method = PaymentMethod._api_retrieve(intent.payment_method)
        check_usable(method, intent.customer, intent)
        if method.customer is None:
            method._spent = True  # used once; attached by this payment, it is usable again
        if _OFF_SESSION.get() and method._requires_authentication():
            decline_unauthenticated(intent, method)
        previous_confirm(intent, on_failure_now)

    PaymentIntent._confirm = confirm

    previous_create_charge = PaymentIntent._create_charge

    def create_charge(intent: Any, on_failure_now: Any) -> None:
        """After the confirmation (or the customer's authentication) authorizes: keep the
        card as `setup_future_usage` asks, and say when the hold ends."""
        before = intent.latest_charge
        try:
            previous_create_charge(intent, on_failure_now)
        finally:
            charge = intent.latest_charge
            if charge is not None and charge is not before and charge.status == "succeeded":
                settle(intent, PaymentMethod._api_retrieve(charge.payment_method), charge)

    def settle(intent: Any, method: Any, charge: Any) -> None:
        usage = getattr(intent, "setup_future_usage", None)
        if intent.customer is not None and usage is not None:
            if method.customer is None:
                attach(method, intent.customer)
            if usage == "off_session":
                method._set_up_off_session = True
        if not charge.captured:
            charge._capture_before = hold_ends(
                charge.created,
                merchant_initiated=_OFF_SESSION.get(),
                seconds=getattr(intent, "_hold_seconds", None),
            )

    PaymentIntent._create_charge = create_charge

    # --- the PaymentIntent's parameters --------------------------------------------------

    PaymentIntent.setup_future_usage = None  # shown, and updatable, on every PaymentIntent
    previous_init = PaymentIntent.__init__

    def init(intent: Any, *args: Any, setup_future_usage: object = None, **kwargs: Any) -> None:
        usage = (
            None if setup_future_usage is None else future_usage(setup_future_usage, unset=False)
        )
        previous_init(intent, *args, **kwargs)
        intent.setup_future_usage = usage
        intent._card_error = None

    PaymentIntent.__init__ = init

    previous_create = PaymentIntent._api_create

    def api_create(cls: Any, /, confirm: Any = None, off_session: Any = None, **data: Any) -> Any:
        """`off_session` "can only be used with confirm=true" (PaymentIntent create)."""
        try:
            off = off_session_flag(off_session)
        except ValueError:
            raise refused(f"Invalid off_session: {off_session}", param="off_session") from None
        if off is not None and resources.try_convert_to_bool(confirm) is not True:
            raise refused(
                "The off_session parameter can only be used with confirm=true.",
                param="off_session",
            )
        if isinstance(data.get("payment_method"), str):
            method = PaymentMethod._api_retrieve(data["payment_method"])
            check_usable(method, data.get("customer"))
        elif resources.try_convert_to_bool(confirm) is True:
            raise refused(MISSING_PAYMENT_METHOD, code="payment_intent_unexpected_state")
        token = _OFF_SESSION.set(off is True)
        try:
            return previous_create(confirm=confirm, off_session=off, **data)
        finally:
            _OFF_SESSION.reset(token)

    PaymentIntent._api_create = classmethod(api_create)

    previous_api_confirm = PaymentIntent._api_confirm

    def api_confirm(
        cls: Any, /, id: str, off_session: Any = None, setup_future_usage: Any = None, **data: Any
    ) -> Any:
        try:
            off = off_session_flag(off_session)
        except ValueError:
            raise refused(f"Invalid off_session: {off_session}", param="off_session") from None
        if setup_future_usage is not None:
            usage = future_usage(setup_future_usage, unset=True)
            PaymentIntent._api_retrieve(id).setup_future_usage = usage
        token = _OFF_SESSION.set(off is True)
        try:
            return previous_api_confirm(id, **data)
        finally:
            _OFF_SESSION.reset(token)

    PaymentIntent._api_confirm = classmethod(api_confirm)

    previous_update = PaymentIntent._api_update

    def api_update(cls: Any, /, id: str, **data: Any) -> Any:
        """ "It will be cleared if the PaymentIntent is later updated for any reason"
        (`last_payment_error`, the PaymentIntent object)."""
        if "setup_future_usage" in data:
            data["setup_future_usage"] = future_usage(data["setup_future_usage"], unset=True)
        if isinstance(data.get("payment_method"), str) and data["payment_method"]:
            intent = PaymentIntent._api_retrieve(id)
            method = PaymentMethod._api_retrieve(data["payment_method"])
            check_usable(method, data.get("customer", intent.customer), intent)
        intent = previous_update(id, **data)
        intent._card_error = None
        return intent

    PaymentIntent._api_update = classmethod(api_update)

    previous_error = PaymentIntent.last_payment_error

    def last_payment_error(intent: Any) -> Any:
        return getattr(intent, "_card_error", None) or previous_error.fget(intent)

    PaymentIntent.last_payment_error = property(last_payment_error)

    previous_list = PaymentIntent._api_list_all

    def list_intents(cls: Any, /, url: str, customer: object = None, **kwargs: Any) -> Any:
        if customer is not None and not isinstance(customer, str):
            raise refused("Invalid customer", param="customer")
        listed = previous_list(url, **kwargs)
        if customer is not None:
            listed._list = [i for i in listed._list if i.customer == customer]
        return listed

    PaymentIntent._api_list_all = classmethod(list_intents)

    # localstripe bound its confirm route to the stock function when it was imported: the
    # route calls the class's function now, so that `off_session` reaches it.
    for route in app.router.routes():
        resource = route.resource
        if route.method == "POST" and resource is not None and resource.canonical == _CONFIRM_URL:
            route._handler = server.api_extra(
                lambda **data: PaymentIntent._api_confirm(**data), _CONFIRM_URL
            )

    # --- attach and detach ---------------------------------------------------------------

    previous_attach = PaymentMethod._api_attach

    def api_attach(cls: Any, /, id: str, customer: object = None, **kwargs: Any) -> Any:
        check_attachable(cls._api_retrieve(id), customer)
        return previous_attach(id, customer=customer, **kwargs)

    PaymentMethod._api_attach = classmethod(api_attach)

    def charge_details(charge: Any) -> dict[str, Any] | None:
        """The card that paid, with the hold's end: Stripe's `payment_method_details`."""
        try:
            method = PaymentMethod._api_retrieve(charge.payment_method)
        except errors.UserError:
            return None
        if getattr(method, "type", None) != "card":
            return None
        card = {key: method.card.get(key) for key in _CARD_DETAILS}
        card.update(network=method.card.get("brand"), three_d_secure=None)
        ends = getattr(charge, "_capture_before", None)
        if ends is not None:
            card["capture_before"] = ends
        return {"type": "card", "card": card}

    resources.Charge.payment_method_details = property(charge_details)

    @web.middleware
    async def attaching(request: web.Request, handler: Handler) -> web.StreamResponse:
        """The attach and detach routes (bound to localstripe's own functions): checked
        before, and the card marked spent after a detach."""
        found = _ATTACH_OR_DETACH.match(request.path) if request.method == "POST" else None
        if found is None:
            return await handler(request)
        method = PaymentMethod._api_retrieve(found[1])
        if found[2] == "attach":
            data = await server.get_post_data(request, remove_auth=False) or {}
            check_attachable(method, data.get("customer"))
        elif method.customer is None:
            raise refused(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible.",
                param="payment_method",
            )
        response = await handler(request)
        if response.status == 200:
            if found[2] == "detach":
                method._spent = True
            kind = "attached" if found[2] == "attach" else "detached"
            schedule(Event(f"payment_method.{kind}", method))
        return response

    app.middlewares.append(attaching)
