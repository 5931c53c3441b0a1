"""Ops' `resolve`: the problem was handled outside the service; the flag and the stuck
step go, failed refunds are settled, a pending cancellation is recorded as done.
"""

from __future__ import annotations

from temporalio import workflow

from vult.domain import payments
from vult.domain.contracts import (
    Resolution,
)
from vult.domain.status import CANCELLABLE, OrderStatus
from workflows import attention, ops_view
from workflows.order_actions import row
from workflows.order_actions.context import OrderContext

S = OrderStatus


async def resolve(ctx: OrderContext, note: str) -> None:
    """Ops handled the problem outside the service: the flag and the stuck step go, the
    note stays (state, row, history); a pending cancellation is recorded as done."""
    state = ctx.state
    problem = "; ".join(p for p in (state.ops.attention, *state.ops.notices.values()) if p)
    state.ops.resolutions.append(Resolution(at=workflow.now(), note=note, problem=problem))
    state.ops.attention, state.ops.retry_at, state.ops.parked_events = None, None, []
    owed = [k for k, w in state.money.watched_refunds.items() if w.status in payments.DEAD_REFUND]
    # On the row too: the after-close workflow knows the order from it and Stripe.
    settled = [r for ids in state.money.failed_refunds.values() for r in ids] + [
        state.money.watched_refunds[k].refund_id for k in owed
    ]
    if state.money.failed_refunds or owed:
        # Paid back another way: no later event makes these refunds again.
        state.money.settled_refund_ids.extend(settled)
        state.money.failed_refunds.clear()
        for key in owed:
            del state.money.watched_refunds[key]
    state.ops.notices.clear()
    state.money.retry_asked = False
    if state.fulfilment.pending_shipment is not None:  # a refused capture, settled outside
        state.fulfilment.pending_shipment = None
        state.hold.over = True
    attention.unflag(ctx.index_for_search)
    ops_view.count("vult_orders_resolved_total", "Orders ops resolved by hand")
    status = state.status
    reason = state.cancelling.pending
    if reason is not None and status in CANCELLABLE:
        await row.change(
            ctx,
            status,
            S.Cancelled,
            cancellation_reason=reason,
            resolution_note=note,
            settled_refund_ids=settled or None,
        )
        state.cancelling.at, state.cancelling.reason = workflow.now(), reason
    elif status is not None:
        await row.annotate(ctx, resolution_note=note[:1000], settled_refund_ids=settled or None)
    state.cancelling.pending = None
