"""Spec 5.7: Stripe's webhook endpoint."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request

from api import read_model, stripe_webhooks
from api.deps import CommandsDep, EngineDep, SettingsDep
from api.errors import Unauthorized
from api.metrics import WEBHOOK_EVENTS, WEBHOOK_SIGNATURE_FAILURES
from api.schemas import ErrorResponse

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
log = logging.getLogger("vult.api.webhooks")


@router.post("/stripe", responses={401: {"model": ErrorResponse}})
async def stripe_webhook(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    commands: CommandsDep,
    stripe_signature: Annotated[str, Header()] = "",
) -> dict[str, bool]:
    """Receive a signed Stripe event and pass it to the order it concerns."""
    payload = await request.body()
    try:
        event = stripe_webhooks.verify(
            payload,
            stripe_signature,
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_webhook_tolerance_seconds,
        )
    except stripe_webhooks.SignatureError as exc:
        WEBHOOK_SIGNATURE_FAILURES.inc()
        log.warning("refused a Stripe webhook: %s", exc)
        raise Unauthorized(str(exc)) from exc
    WEBHOOK_EVENTS.labels(type=event.type).inc()

    found = stripe_webhooks.payment_event(event)
    if found is None:
        return {"received": True}
    order_id = found.order_id
    if order_id is None:  # a PaymentIntent created without our metadata
        async with engine.connect() as connection:
            order_id = await read_model.find_order_id_by_payment_intent(
                connection, found.event.payment_intent_id
            )
    # No order (or no longer a running one): acknowledge, so Stripe does not retry forever.
    if order_id is not None:
        await commands.deliver_payment_event(order_id, found.event)
    return {"received": True}
