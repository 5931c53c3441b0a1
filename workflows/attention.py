"""An order that needs attention: a step failed in a way no retry fixed (Stripe refused,
an outage outlasted every retry, a bug). The workflow never fails or ends for it: it parks
the step, tells ops (the `NeedsAttention` search attribute, the reason in the current
details and the state, a counter and its alert), keeps taking events and timers, and tries
the step again at `retry_at` or when ops send the `retry` update."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from vult.domain.contracts import OrderState, OrderTiming, PaymentEvent
from vult.domain.failures import Failure
from vult.temporal import search_attributes as sa
from workflows import ops_view

_REASON_CHARS = 500


def _cause(err: BaseException) -> BaseException:
    return err.cause if isinstance(err, ActivityError) and err.cause else err


def _reason(what: str, err: BaseException) -> str:
    cause = _cause(err)
    text = str(cause) if isinstance(cause, FailureError) else type(cause).__name__
    return f"{what} failed: {text or type(cause).__name__}"[:_REASON_CHARS]


def needs_attention(state: OrderState) -> bool:
    return state.ops.attention is not None or bool(state.ops.notices)


def park(
    state: OrderState,
    timing: OrderTiming,
    indexed: bool,
    what: str,
    err: BaseException,
    event: PaymentEvent | None,
) -> None:
    first = not needs_attention(state)
    if state.ops.attention is None:
        state.ops.attention_since = workflow.now()  # names this parking's event
    state.ops.attention = _reason(what, err)
    cause = _cause(err)
    kind = cause.type if isinstance(cause, ApplicationError) else None
    if kind == Failure.STRIPE_KEY_REFUSED:
        ops_view.count("vult_stripe_key_refused_total", "Stripe refused the service's API key")
    if kind == Failure.REFUND_FAILED:
        # A second refund only when ops ask: they may pay the customer back another way.
        state.ops.retry_at = None
    else:
        state.ops.retry_at = workflow.now() + timing.attention_retry
    if event is not None:
        state.ops.parked_events.append(event)
    flag(indexed, state.ops.attention, first)


def flag(indexed: bool, reason: str, first: bool) -> None:
    """Tell ops: the search attribute and the counter (its alert) once per parking, the log
    line each time."""
    if first:
        ops_view.index(indexed, sa.NEEDS_ATTENTION.value_set(True))
        ops_view.count("vult_orders_needing_attention_total", "Orders parked for ops' attention")
    workflow.logger.error("Order needs attention: %s", reason)


def unflag(indexed: bool) -> None:
    ops_view.index(indexed, sa.NEEDS_ATTENTION.value_set(False))


def notify(state: OrderState, indexed: bool, kind: str, text: str) -> None:
    """A notice for ops that no retry settles (a payment refunded in full outside the
    service, an open dispute): flagged like a parked step, kept until its condition clears
    (`clear_notice`) or ops resolve it. The workflow carries on meanwhile."""
    if state.ops.notices.get(kind) == text:
        return
    first = state.ops.attention is None and not state.ops.notices
    state.ops.notices[kind] = text[:_REASON_CHARS]
    flag(indexed, text, first)


def clear_notice(state: OrderState, indexed: bool, kind: str) -> None:
    if state.ops.notices.pop(kind, None) is not None and state.ops.attention is None:
        if not state.ops.notices:
            unflag(indexed)


def unpark(state: OrderState, indexed: bool) -> list[PaymentEvent]:
    """Clear the attention and return the parked events, to be handled again. Notices
    stay: they clear with their condition."""
    if state.ops.attention is not None and not state.ops.notices:
        unflag(indexed)
    events, state.ops.parked_events = state.ops.parked_events, []
    state.ops.attention, state.ops.retry_at = None, None
    return events


def refuse_cancellation() -> None:
    """A Temporal cancellation request (the Web UI's button, `temporal workflow cancel`)
    would end the order behind its back while money may still move. Refused: cancel the
    order itself instead (docs/operations.md)."""
    workflow.logger.warning(
        "Refused a cancellation request for this order's workflow: cancel the order with the "
        "`cancel` update or the ops API instead; the workflow keeps running"
    )
