"""The order events this workflow emits (docs/events.md), each written with the row change
that records its fact (row.py passes them to the write; activities/order_events.py keeps
them, once, and starts their deliveries).

Only runs that began on 1.1 emit (`OrderContext.emits_events`, patch ORDER_EVENTS): an
order placed on 1.0 keeps replaying as it ran and tells no one until its next run.
"""

from __future__ import annotations

import uuid

from temporalio import workflow

from vult.domain import payments
from vult.domain.contracts import ChargeFacts, EmittedEvent, ReturnRecord
from vult.domain.money import from_minor_units
from vult.domain.order_events import OrderEventType, event_id
from vult.domain.status import OrderStatus
from workflows import ops_view
from workflows.order_actions.context import OrderContext

E = OrderEventType
S = OrderStatus
Value = str | int | bool | None | list[dict[str, str | int]]


def of(
    ctx: OrderContext, kind: OrderEventType, fact: str = "", **detail: Value
) -> list[EmittedEvent]:
    """The event for a fact of this order, for the row write that records it; none when
    this run wrote it already (row.py marks each written one in `Ops.told`)."""
    if not ctx.emits_events:
        return []
    made = _event(ctx.order_id, kind, fact, detail)
    return [] if made.event_id in ctx.state.ops.told else [made]


def _event(
    order_id: uuid.UUID, kind: OrderEventType, fact: str, detail: dict[str, Value]
) -> EmittedEvent:
    return EmittedEvent(
        event_id=event_id(order_id, kind, fact), type=kind.value, at=workflow.now(), detail=detail
    )


def begin(ctx: OrderContext) -> None:
    """The run tells its facts from now on. A state carried over from a run that told
    nothing (1.0, or rebuilt from the row): what it already holds is not news, so its facts
    count as told (the outbox has them when a 1.1 run recorded them)."""
    ops = ctx.state.ops
    if ops.telling_since is not None:
        return
    ops.telling_since = workflow.now()
    state = ctx.state
    if state.status is None:
        return  # a new order: nothing has happened yet
    known = [(E.PLACED, "")]
    if state.status in (S.Confirmed, S.Processing, S.Shipped, S.Delivered) or (
        state.status == S.Cancelled and state.money.charges
    ):
        known += [(E.PAID, ""), (E.AUTHORIZED, "")]
    if state.status == S.Failed:
        current = state.payments.current
        known.append(
            (E.PAYMENT_FAILED, _failed_try(ctx, current.payment_intent_id if current else ""))
        )
    if state.status == S.Cancelled:
        known.append((E.CANCELLED, ""))
    if state.status in (S.Shipped, S.Delivered):
        known.append((E.SHIPPED, ""))
    if state.status == S.Delivered:
        known.append((E.DELIVERED, ""))
    known += [(E.RETURNED, key) for key in state.fulfilment.returns]
    ops.told += [event_id(ctx.order_id, kind, fact) for kind, fact in known]
    for facts in state.money.charges.values():
        ops.told += [e.event_id for e in stripe_events(ctx.order_id, state.currency, facts, {})]


def written(ctx: OrderContext, events: list[EmittedEvent]) -> None:
    """These events are in the outbox: this run does not write them again."""
    for event in events:
        ctx.state.ops.told.append(event.event_id)
        ops_view.count("vult_order_events_total", "Order events emitted (docs/events.md)")


def on_transition(
    ctx: OrderContext, new: OrderStatus, fields: dict[str, object]
) -> list[EmittedEvent]:
    """The event a status change itself is (placed, paid, failed, cancelled, delivered)."""
    if new == S.Confirmed:
        held = fields.get("stripe_payment_status") == "authorized"
        return of(ctx, E.AUTHORIZED if held else E.PAID)
    if new == S.Failed:
        current = ctx.state.payments.current
        pi = current.payment_intent_id if current else ""
        return of(
            ctx,
            E.PAYMENT_FAILED,
            _failed_try(ctx, pi),
            message=_str(fields, "payment_error_message"),
        )
    if new == S.Cancelled:
        return of(ctx, E.CANCELLED, reason=_str(fields, "cancellation_reason"))
    if new == S.Delivered:
        return of(ctx, E.DELIVERED)
    return []


def shipped(
    ctx: OrderContext, wanted: dict[str, int] | None, carrier: str, tracking: str
) -> list[EmittedEvent]:
    """The order's one shipment: every line (`wanted` None), or these lines, the rest
    never shipped (their share refunded, told as order.refunded)."""
    lines: list[dict[str, str | int]] = [
        {"lineItemId": line, "quantity": quantity} for line, quantity in (wanted or {}).items()
    ]
    return of(
        ctx,
        E.SHIPPED,
        lines=lines,
        partial=wanted is not None,
        carrier=carrier,
        trackingNumber=tracking,
    )


def returned(ctx: OrderContext, record: ReturnRecord) -> list[EmittedEvent]:
    """A return taken: its lines (none for a return of an amount) and what it refunds
    (the refund itself is told as order.refunded when Stripe's amounts show it)."""
    lines: list[dict[str, str | int]] = [
        {"lineItemId": li.line_item_id, "quantity": li.quantity} for li in record.line_items
    ]
    return of(
        ctx,
        E.RETURNED,
        record.key,
        returnKey=record.key,
        reason=record.reason,
        lines=lines,
        amount=str(record.amount),
        currency=ctx.state.currency,
    )


def from_stripe(ctx: OrderContext) -> list[EmittedEvent]:
    """What Stripe's amounts, as last read for each PaymentIntent, show that this run has
    not told: each refund that went through (ours or anyone's), a dispute opened, a
    dispute closed. Every row write carries them (row.py), so a refund is told with the
    first write after Stripe's amounts show it; across runs, the outbox keeps each once."""
    if not ctx.emits_events:
        return []
    told = set(ctx.state.ops.told)
    purposes = _purposes(ctx)
    found: list[EmittedEvent] = []
    for facts in ctx.state.money.charges.values():
        for made in stripe_events(ctx.order_id, ctx.state.currency, facts, purposes):
            if made.event_id not in told:
                told.add(made.event_id)
                found.append(made)
    return found


def stripe_events(
    order_id: uuid.UUID, currency: str | None, facts: ChargeFacts, purposes: dict[str, str]
) -> list[EmittedEvent]:
    """The order events Stripe's amounts for one PaymentIntent show, whoever asks (the
    order's workflow, or the after-close one, which knows no purpose: "other")."""
    found: list[EmittedEvent] = []
    currency = (currency or facts.currency).upper()
    for refund in facts.refunds:
        if refund.status != "succeeded":
            continue
        detail: dict[str, Value] = {
            "refundId": refund.refund_id,
            "amount": str(from_minor_units(refund.amount, currency)),
            "currency": currency,
            "whole": payments.held(facts) == 0,
            "purpose": purposes.get(refund.refund_id, "other"),
        }
        found.append(_event(order_id, E.REFUNDED, refund.refund_id, detail))
    dispute = facts.dispute
    if dispute is not None:
        detail = {
            "disputeId": dispute.dispute_id,
            "status": dispute.status,
            "amount": str(from_minor_units(dispute.amount, currency)),
            "currency": currency,
        }
        found.append(_event(order_id, E.DISPUTED, dispute.dispute_id, detail))
        if not payments.dispute_open(facts):
            found.append(_event(order_id, E.DISPUTE_CLOSED, dispute.dispute_id, detail))
    return found


def needs_attention(ctx: OrderContext) -> list[EmittedEvent]:
    """The order parked for ops, once per parking (named by when it began)."""
    ops = ctx.state.ops
    if ops.attention is None or ops.attention_since is None:
        return []
    return of(ctx, E.NEEDS_ATTENTION, ops.attention_since.isoformat(), reason=ops.attention)


def _purposes(ctx: OrderContext) -> dict[str, str]:
    """What each refund of ours was for, by its Stripe id (another's is "other")."""
    money = ctx.state.money
    found = {r.refund_id: "cancellation" for r in money.refunds.values()}
    for watched in money.watched_refunds.values():
        found[watched.refund_id] = "shipment"
    for record in ctx.state.fulfilment.returns.values():
        if record.refund_id:
            found[record.refund_id] = "return"
    return found


def _failed_try(ctx: OrderContext, pi: str) -> str:
    """A decline is named by its charge at Stripe when there is one, else by the
    PaymentIntent and how many of its declines this run saw."""
    charge = ctx.state.payments.last_charge
    return f"{pi}/{charge}" if charge else f"{pi}/{ctx.state.payments.attempt}"


def _str(fields: dict[str, object], name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else str(value)
