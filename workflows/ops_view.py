"""What ops see of an order's workflow: the sentence in the Web UI's current details, the
search attributes they query, and the counters the worker exports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from vult.domain.contracts import OrderState
from vult.domain.status import OrderStatus
from vult.temporal import search_attributes as sa

S = OrderStatus


def money(state: OrderState) -> str:
    return f"{state.currency} {state.total}"


def sentence(state: OrderState) -> str:
    """The order in one plain sentence."""
    payment = state.payments.current
    pi = payment.payment_intent_id if payment else ""
    match state.status:
        case S.Pending:
            return f"Waiting for the customer to pay {money(state)}"
        case S.PaymentProcessing:
            return f"Waiting for payment of {money(state)} ({pi})"
        case S.Failed:
            return f"Payment of {money(state)} failed ({pi}); waiting for another attempt"
        case S.Confirmed if state.hold.authorized_at is not None and state.hold.captured is None:
            return f"Authorized {money(state)} ({pi}), captured at shipment; waiting for fulfilment"
        case S.Confirmed:
            return f"Paid {money(state)} ({pi}); waiting for fulfilment"
        case S.Processing:
            return "Being prepared for shipping"
        case S.Shipped:
            return "Shipped; waiting for delivery"
        case S.Delivered if state.fulfilment.returns:
            return f"Delivered; {len(state.fulfilment.returns)} return(s) taken"
        case S.Delivered:
            return "Delivered"
        case S.Cancelled:
            refunds = ", ".join(f"{r.refund_id} ({r.status})" for r in state.money.refunds.values())
            refunded = f"; refunds: {refunds}" if refunds else ""
            return f"Cancelled: {state.cancelling.reason}{refunded}"
    return "Placing the order"


def describe(state: OrderState) -> None:
    details = sentence(state)
    if state.resumes:
        resumed = state.resumes[-1]
        details = (
            f"RESUMED {resumed.at:%Y-%m-%d %H:%M} UTC from the order's row and Stripe (the "
            f"previous run: {resumed.previous}). {details}"
        )
    for notice in state.ops.notices.values():
        details = f"NEEDS ATTENTION: {notice}. {details}"
    if state.ops.attention is not None:
        when = f"{state.ops.retry_at:%Y-%m-%d %H:%M} UTC" if state.ops.retry_at else "by ops"
        details = f"NEEDS ATTENTION: {state.ops.attention} (tried again {when}, or by the retry "
        details += f"update). {details}"
    workflow.set_current_details(details)


def index(enabled: bool, *updates: SearchAttributeUpdate[Any]) -> None:
    if enabled and updates:
        workflow.upsert_search_attributes(list(updates))


def index_placed(enabled: bool, state: OrderState, customer_email: str) -> None:
    """The API indexes the order when it starts the workflow, under the number it drew and
    the total it quoted: upsert only what the row turned out to differ in (a taken number,
    a price changed meanwhile, or a start without attributes). Each upsert is a
    visibility write on the server (docs/performance.md)."""
    assert state.order_number is not None and state.status is not None
    assert state.total is not None
    wanted = (
        sa.ORDER_NUMBER.value_set(state.order_number),
        sa.CUSTOMER_EMAIL.value_set(customer_email),
        sa.ORDER_STATUS.value_set(state.status.value),
        sa.ORDER_TOTAL.value_set(float(state.total)),
    )
    started = workflow.info().typed_search_attributes
    index(enabled, *(u for u in wanted if started.get(u.key) != u.value))


def unindex_refused(enabled: bool) -> None:
    """Indexed at the start as a Pending order that now will never exist."""
    started = workflow.info().typed_search_attributes
    index(enabled, *(key.value_unset() for key in sa.ALL if started.get(key) is not None))


def count(name: str, description: str, labels: Mapping[str, str] | None = None) -> None:
    # The SDK's metric meter is replay-safe: nothing is counted again on replay.
    workflow.metric_meter().create_counter(name, description).add(1, labels)
