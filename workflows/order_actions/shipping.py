"""Fulfilment with its money: a shipment captures its share of an authorization (capture at
shipment) or refunds the unshipped lines' share, and a return refunds its lines' share.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from vult.domain import fulfilment, payments
from vult.domain.contracts import (
    RecordReturn,
    ReturnRecord,
    ReturnRequest,
    ShipmentMoved,
    ShipOrder,
)
from vult.domain.failures import Failure
from vult.domain.money import from_minor_units, to_minor_units
from vult.domain.status import OrderStatus
from workflows import attention, decisions, ops_view, steps
from workflows import declared_activities as declared
from workflows.order_actions import events as order_events
from workflows.order_actions import refunds, row
from workflows.order_actions.context import OrderContext
from workflows.steps import refused

S = OrderStatus


def to_capture(ctx: OrderContext) -> bool:
    """A shipment captures first: an authorization seen, or (capture at shipment,
    nothing captured) one not seen, whose Stripe amounts then decide (a resumed run
    whose authorization lapsed meanwhile is refused, never shipped unpaid)."""
    if decisions.authorized(ctx.state):
        return True
    return ctx.capture == "at_shipment" and ctx.state.hold.captured is None


async def ship(ctx: OrderContext, shipment: ShipOrder) -> None:
    """Processing -> Shipped. An authorized payment is captured first: the shipped
    lines' share (vult/domain/fulfilment.py), the rest of the authorization released;
    a capture Stripe refuses raises PaymentRefused and nothing is recorded. With
    automatic capture, a shipment of part of the lines refunds the rest's share."""
    state, order_id = ctx.state, ctx.order_id
    payment = state.payments.current
    wanted = {li.line_item_id: li.quantity for li in shipment.line_items or []} or None
    fields: dict[str, str | Decimal | datetime | None] = {}
    moved = state.fulfilment.shipment_moved
    if moved is not None:
        if moved.lines != wanted:
            raise refused(
                "A shipment of other lines has already moved its money at Stripe (its "
                "share captured, or the rest refunded) and was not recorded: send the same "
                "shipment again"
            )
        if moved.amount_captured is not None:
            fields["amount_captured"] = moved.amount_captured
        if moved.payment_intent_id not in state.money.charges:
            await refunds.read_charge(ctx, moved.payment_intent_id)
        fields.update(row.payment_fields(ctx, moved.payment_intent_id, None))
    elif payment is not None and (wanted is not None or to_capture(ctx)):
        order = await declared.read_order_lines(order_id)
        amounts, lines = fulfilment.of(order)
        if wanted is not None and (
            problems := fulfilment.problems_with(lines, wanted, returning=False)
        ):
            raise refused("; ".join(problems))
        share = order.total if wanted is None else fulfilment.shipped_share(amounts, lines, wanted)
        assert state.currency is not None
        amount = to_minor_units(share, state.currency)
        pi = payment.payment_intent_id
        if to_capture(ctx):
            await capture(ctx, pi, amount)
            captured = from_minor_units(state.hold.captured or 0, state.currency)
            fields["amount_captured"] = captured
            fields.update(row.payment_fields(ctx, pi, None))
            state.fulfilment.shipment_moved = ShipmentMoved(
                lines=wanted, amount_captured=captured, payment_intent_id=pi
            )
        elif amount < to_minor_units(order.total, state.currency):
            rest = to_minor_units(order.total, state.currency) - amount
            key = f"order:{order_id}:unshipped:{pi}"
            refund = await steps.refund_payment(order_id, pi, amount=rest, key=key)
            ops_view.count("vult_refunds_total", "Refunds issued")
            refunds.watch(ctx, pi, key, "the share of the lines not shipped", refund)
            await refunds.read_charge(ctx, pi)
            fields.update(row.payment_fields(ctx, pi, refund))
            state.fulfilment.shipment_moved = ShipmentMoved(lines=wanted, payment_intent_id=pi)
    await row.change(
        ctx,
        S.Processing,
        S.Shipped,
        order_events.shipped(
            ctx, wanted, shipment.carrier.strip(), shipment.tracking_number.strip()
        ),
        shipping_carrier=shipment.carrier.strip(),
        tracking_number=shipment.tracking_number.strip(),
        **fields,
        **({"shipped_lines": wanted} if wanted is not None else {"ship_all": True}),
    )
    state.fulfilment.pending_shipment = None
    state.fulfilment.shipment_moved = None


async def capture(ctx: OrderContext, pi: str, amount: int) -> None:
    """Capture `amount` of the authorization, as Stripe's amounts allow: nothing is
    shipped unpaid. Captured already (an earlier try whose answer was lost, by hand in
    the Dashboard): taken as it is. Nothing capturable (the authorization lapsed or
    was released): PaymentRefused."""
    state = ctx.state
    facts = state.money.charges.get(pi)
    if facts is None or state.fulfilment.pending_shipment is not None:  # a retry: Stripe again
        facts = await refunds.read_charge(ctx, pi)
    if facts.amount_captured <= 0:
        if facts.amount_capturable <= 0:
            raise ApplicationError(
                f"Nothing of {pi} can be captured ({payments.payment_status(facts)} at "
                "Stripe: the authorization lapsed or was released)",
                type=Failure.PAYMENT_REFUSED,
            )
        await steps.capture_payment(ctx.order_id, pi, amount)
        facts = await refunds.read_charge(ctx, pi)
    elif payments.held(facts) > amount:
        # Captured outside the service above this shipment's share: the rest goes back,
        # as a release would have left it.
        key = f"order:{ctx.order_id}:above-share:{pi}"
        refund = await steps.refund_payment(
            ctx.order_id, pi, amount=payments.held(facts) - amount, key=key
        )
        ops_view.count("vult_refunds_total", "Refunds issued")
        refunds.watch(ctx, pi, key, "what was captured above the shipment's share", refund)
        facts = await refunds.read_charge(ctx, pi)
    state.hold.captured = facts.amount_captured
    attention.clear_notice(state, ctx.index_for_search, "authorization")


async def take_return(ctx: OrderContext, request: ReturnRequest) -> ReturnRecord:
    """Refund some shipped lines (their share, no shipping) or an amount, once per key,
    never more than Stripe says is still held."""
    state, order_id = ctx.state, ctx.order_id
    found = state.fulfilment.returns.get(request.key)
    if found is not None:
        if found.request is not None and found.request != request:
            raise refused("Idempotency-Key was used with a different return")
        return found
    payment = state.payments.current
    if payment is None:
        raise refused("The order has no payment to refund")
    pi = payment.payment_intent_id
    amounts, lines = fulfilment.of(await declared.read_order_lines(order_id))
    if request.line_items:
        wanted = {li.line_item_id: li.quantity for li in request.line_items}
        if problems := fulfilment.problems_with(lines, wanted, returning=True):
            raise refused("; ".join(problems))
        amount = fulfilment.returned_share(amounts, lines, wanted)
    else:
        assert request.amount is not None
        amount = request.amount
    assert state.currency is not None
    minor = to_minor_units(amount, state.currency)
    digest = hashlib.sha256(request.key.encode()).hexdigest()[:32]
    key = f"order:{order_id}:return:{digest}"
    facts = await refunds.read_charge(ctx, pi)
    # Made already under this key (its answer lost, or the row write after it failed):
    # that refund is the return, whatever is held now.
    refund = payments.our_refund(facts, key)
    if refund is None:
        if payments.refund_blocked(facts):
            raise refused(payments.refused_while_disputed(pi))
        if minor > payments.held(facts):
            held = from_minor_units(payments.held(facts), state.currency)
            raise refused(
                f"The return of {amount} {state.currency} is more than is still held of "
                f"the payment ({held} {state.currency}): nothing was refunded"
            )
        refund = await steps.refund_payment(order_id, pi, amount=minor, key=key)
        ops_view.count("vult_returns_total", "Returns refunded")
        refunds.watch(ctx, pi, key, f"the return {request.key!r}", refund)
        facts = refunds.with_refund(facts, refund)
        state.money.charges[pi] = facts
    record = ReturnRecord(
        key=request.key,
        reason=request.reason.strip(),
        amount=from_minor_units(refund.amount, state.currency),
        line_items=request.line_items or [],
        refund_id=refund.refund_id,
        refund_status=refund.status,
        at=workflow.now(),
        request=request,
    )
    recorded_at = await declared.record_return(
        RecordReturn(
            order_id=order_id,
            record=record,
            at=workflow.now(),
            stripe_payment_status=payments.payment_status(facts),
            amount_refunded=row.major(ctx, facts.amount_refunded),
            events=(told := order_events.returned(ctx, record)),
        )
    )
    order_events.written(ctx, told)
    if recorded_at is not None:
        # Recorded by a workflow task that was lost: this is the return, as the row has it.
        record.at = recorded_at
    state.fulfilment.returns[request.key] = record
    return record
