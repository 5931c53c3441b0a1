"""Spec 5.7: Stripe's webhook endpoint."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from api import read_model, stripe_webhooks
from api.commands import resume_if_gone
from api.deps import CommandsDep, EngineDep, SettingsDep, VerifiedEventDep
from api.errors import BeingResumed
from api.metrics import WEBHOOK_EVENTS_IGNORED
from api.order_commands import WorkflowClosed
from api.stripe_webhooks import NotForUs, OrderEvent
from vult.wire.schemas import ErrorResponse

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@router.post("/stripe", responses={401: {"model": ErrorResponse}})
async def stripe_webhook(
    event: VerifiedEventDep, engine: EngineDep, commands: CommandsDep, settings: SettingsDep
) -> dict[str, bool]:
    """Receive a signed Stripe event and pass it to the order it concerns. The account is
    shared: an event about a PaymentIntent that is not ours is acknowledged (so Stripe does
    not retry it for days), counted, and never acted on."""
    try:
        found = stripe_webhooks.payment_event(event)
        order_id = await _our_order(engine, found, settings.stripe_owner)
    except NotForUs as skipped:
        WEBHOOK_EVENTS_IGNORED.labels(reason=skipped.reason).inc()
        return {"received": True}
    try:
        await commands.deliver_payment_event(order_id, found.event)
    except WorkflowClosed as closed:
        if await resume_if_gone(engine, commands, order_id):
            # Not acknowledged: Stripe sends it again, to the resumed run (which reads
            # Stripe's word on every PaymentIntent of the order first anyway).
            raise BeingResumed("The order's workflow is being resumed; send again") from closed
        # Finished (delivered, or cancelled and settled): the after-close workflow.
        await commands.settle_late(order_id, found.event)
    return {"received": True}


async def _our_order(engine: AsyncEngine, found: OrderEvent, owner: str) -> uuid.UUID:
    """The order whose PaymentIntent this is: one this service recorded creating, or one
    whose metadata carries our owner marker (or, made before the marker existed, no marker)
    and names an order we have."""
    pi = found.event.payment_intent_id
    recorded = await read_model.order_of_payment_intent(engine, pi)
    if recorded is not None:
        return recorded
    if found.owner is not None and found.owner != owner:
        raise NotForUs("other_owner")
    if found.order_id is None or not await read_model.order_exists(engine, found.order_id):
        raise NotForUs("not_our_payment_intent")
    return found.order_id
