"""Request parameters in the emulator as Stripe takes them at the API version the SDK pins
(development only).

Stock localstripe takes `payment_method_types` on a PaymentIntent, which Stripe refuses
since 2026-09-30.endive ("Removes the payment method types parameter from Payment Intents
and Setup Intents", Stripe's changelog), and knows nothing of `allowed_payment_method_types`,
its replacement. Added here, in the emulator's own process:

- PaymentIntent create, update and confirm refuse `payment_method_types` with Stripe's
  400 `payment_method_types_no_longer_supported`;
- PaymentIntent create takes `allowed_payment_method_types` (the emulator has cards only:
  a list without `card` is refused, as Stripe refuses a PaymentIntent no payment method
  can pay) and shows it as the PaymentIntent's `payment_method_types`.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

_NO_LONGER = (
    "The `payment_method_types` parameter is no longer supported on PaymentIntents at this "
    "API version. Use `allowed_payment_method_types`, or dynamic payment methods, instead."
)
# PaymentIntent create, update and confirm.
_INTENT_WRITE = re.compile(r"^/v1/payment_intents(/[^/]+(/confirm)?)?$")


def install(app: web.Application, resources: Any, errors: Any) -> None:
    """Patch the PaymentIntent model and put the check in front of localstripe's routes."""
    from localstripe import server

    PaymentIntent = resources.PaymentIntent
    original_init = PaymentIntent.__init__

    def init(intent: Any, *args: Any, **kwargs: Any) -> None:
        allowed = kwargs.pop("allowed_payment_method_types", None)
        if allowed is not None and (not isinstance(allowed, list) or "card" not in allowed):
            raise errors.UserError(
                400, "No payment method type in allowed_payment_method_types can pay this"
            )
        original_init(intent, *args, **kwargs)
        intent.payment_method_types = ["card"]

    PaymentIntent.__init__ = init

    @web.middleware
    async def no_payment_method_types(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "POST" and _INTENT_WRITE.match(request.path):
            data = await server.get_post_data(request, remove_auth=False) or {}
            if "payment_method_types" in data:
                error = {
                    "type": "invalid_request_error",
                    "code": "payment_method_types_no_longer_supported",
                    "param": "payment_method_types",
                    "message": _NO_LONGER,
                }
                return web.json_response({"error": error}, status=400)
        return await handler(request)  # type: ignore[no-any-return]

    app.middlewares.append(no_payment_method_types)
