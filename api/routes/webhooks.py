"""Spec 5.7: Stripe's webhook endpoint."""

from __future__ import annotations

from fastapi import APIRouter

from api import read_model, stripe_webhooks
from api.deps import CommandsDep, EngineDep, VerifiedEventDep
from api.schemas import ErrorResponse

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@router.post("/stripe", responses={401: {"model": ErrorResponse}})
async def stripe_webhook(
    event: VerifiedEventDep, engine: EngineDep, commands: CommandsDep
) -> dict[str, bool]:
    """Receive a signed Stripe event and pass it to the order it concerns."""
    found = stripe_webhooks.payment_event(event)
    if found is not None:
        order_id = found.order_id or await read_model.order_id_paid_by(
            engine, found.event.payment_intent_id
        )
        # An order whose workflow has closed gets a late-payment workflow instead; no
        # order of ours at all is acknowledged, so Stripe does not retry it for days.
        if order_id is not None:
            await commands.deliver_payment_event(order_id, found.event)
    return {"received": True}
