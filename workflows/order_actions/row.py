"""The one way the order row changes: a transition (checked against the status table) or
Stripe's details recorded without one, and the row's payment columns from Stripe's amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from temporalio import workflow

from vult.domain import payments
from vult.domain.contracts import (
    EmittedEvent,
    RefundInfo,
    StatusChange,
    WriteStamp,
)
from vult.domain.money import from_minor_units
from vult.domain.status import OrderStatus, can_transition
from vult.temporal import search_attributes as sa
from workflows import ops_view, steps
from workflows.order_actions import events as order_events
from workflows.order_actions.context import OrderContext
from workflows.steps import refused

S = OrderStatus


def payment_fields(
    ctx: OrderContext, pi: str, refund: RefundInfo | None
) -> dict[str, str | Decimal | None]:
    """The row's payment columns after a refund (or none), from Stripe's amounts when
    they were read."""
    facts = ctx.state.money.charges.get(pi)
    if facts is None:  # a history from before the amounts were read
        assert refund is not None
        return {"stripe_payment_status": refund_status(refund)}
    return {
        "stripe_payment_status": payments.payment_status(facts),
        "amount_refunded": major(ctx, facts.amount_refunded),
        "dispute_status": facts.dispute.status if facts.dispute else None,
    }


def major(ctx: OrderContext, minor: int) -> Decimal:
    assert ctx.state.currency is not None
    return from_minor_units(minor, ctx.state.currency)


async def change(
    ctx: OrderContext,
    current: OrderStatus,
    new: OrderStatus,
    events: Sequence[EmittedEvent] = (),
    /,
    **fields: str | Decimal | datetime | list[str] | None,
) -> None:
    """The transition, and the order events that tell it (the transition's own, then
    `events`), written in one transaction."""
    if not can_transition(current, new):
        raise refused(f"Cannot change order status from {current} to {new}")
    told = [*order_events.on_transition(ctx, new, dict(fields)), *events]
    await _write(ctx, current, new, told, **fields)
    ctx.state.status = new
    ops_view.index(ctx.index_for_search, sa.ORDER_STATUS.value_set(new.value))
    if new == S.Confirmed:
        ops_view.count("vult_payments_succeeded_total", "Payments that confirmed an order")
    elif new == S.Failed:
        ops_view.count("vult_payments_failed_total", "Payment attempts that failed")
    if new != S.PaymentProcessing and ctx.state.payments.current is not None:
        # Only a paying customer needs the client secret; keep it no longer than that.
        ctx.state.payments.current.client_secret = ""


async def annotate(
    ctx: OrderContext,
    events: Sequence[EmittedEvent] = (),
    /,
    **fields: str | Decimal | datetime | list[str] | None,
) -> None:
    """Record Stripe details on the row without a transition (and the events they tell)."""
    status = ctx.state.status
    assert status is not None
    await _write(ctx, status, status, events, **fields)


async def _write(
    ctx: OrderContext,
    current: OrderStatus,
    new: OrderStatus,
    events: Sequence[EmittedEvent],
    **fields: str | Decimal | datetime | list[str] | None,
) -> None:
    number = ctx.state.writes + 1
    change = StatusChange(
        order_id=ctx.order_id,
        expected=[current],
        new_status=new,
        at=workflow.now(),
        events=_once([*events, *order_events.from_stripe(ctx)]),
        # Counted only once it landed: a write that failed (it may have committed all the
        # same) is replaced by the next one, which carries its number.
        stamp=WriteStamp(
            chain=workflow.info().first_execution_run_id,
            task_began=workflow.now(),
            number=number,
        ),
    )
    await steps.write_status(change.model_copy(update=fields))
    ctx.state.writes = number
    order_events.written(ctx, change.events)


def _once(events: list[EmittedEvent]) -> list[EmittedEvent]:
    """Each event once (a transition's own may also be one Stripe's amounts show)."""
    return list({e.event_id: e for e in events}.values())


def refund_status(refund: RefundInfo) -> str:
    return "refunded" if refund.status == "succeeded" else f"refund_{refund.status}"
