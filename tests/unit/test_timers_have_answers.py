"""No timer without an answer (workflows/decisions.py): the timers whose handler does nothing
(a cancelled order's grace over, a delivered order's return window over) are due only when
the order can then close. Otherwise the main loop would find one due at every wake-up, do
nothing, and wake again at once: a workflow task that never yields (issue 29)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from vult.domain.contracts import (
    Cancelling,
    ChargeFacts,
    DisputeInfo,
    Fulfilment,
    Money,
    OrderState,
    OrderTiming,
    RefundInfo,
)
from vult.domain.status import OrderStatus
from workflows import decisions
from workflows.decisions import Timer

T0 = datetime(2026, 12, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=400)  # every timer of these orders is due by then
TIMING = OrderTiming()
DO_NOTHING = {Timer.GRACE_OVER, Timer.RETURN_WINDOW_OVER}


def order(status: OrderStatus, refund_pending: bool, dispute_open: bool) -> OrderState:
    charge = ChargeFacts(
        payment_intent_id="pi_1",
        currency="usd",
        amount_captured=10800,
        dispute=DisputeInfo(dispute_id="dp_1", status="needs_response", amount=10800)
        if dispute_open
        else None,
    )
    refunds = (
        {"pi_1": RefundInfo(refund_id="re_1", status="pending", amount=10800, currency="usd")}
        if refund_pending
        else {}
    )
    return OrderState(
        status=status,
        total=Decimal("108.00"),
        currency="USD",
        created_at=T0,
        cancelling=Cancelling(at=T0 if status == OrderStatus.Cancelled else None),
        fulfilment=Fulfilment(delivered_at=T0 if status == OrderStatus.Delivered else None),
        money=Money(charges={"pi_1": charge}, refunds=refunds),
    )


@pytest.mark.parametrize(
    ("status", "refund_pending", "dispute_open"),
    list(itertools.product(OrderStatus, (False, True), (False, True))),
)
def test_a_timer_that_does_nothing_is_due_only_when_the_order_can_close(
    status: OrderStatus, refund_pending: bool, dispute_open: bool
) -> None:
    state = order(status, refund_pending, dispute_open)
    due = [timer for at, timer in decisions.deadlines(state, TIMING) if at <= LATER]
    for timer in due:
        if timer in DO_NOTHING:
            assert decisions.finished(state, TIMING, LATER), (status, timer)
            assert decisions.money_in_flight(state) == [], (status, timer)


@pytest.mark.parametrize("status", [OrderStatus.Cancelled, OrderStatus.Delivered])
def test_with_money_in_flight_stripe_is_asked_again_later_each_time(status: OrderStatus) -> None:
    state = order(status, refund_pending=False, dispute_open=True)
    ((first, timer),) = [d for d in decisions.deadlines(state, TIMING) if d[1] != Timer.RETRY]
    assert timer == Timer.MONEY_IN_FLIGHT
    state.money.checked_at = first  # asked then; still open
    ((second, _),) = decisions.deadlines(state, TIMING)
    assert second == first + TIMING.reconcile_max_interval
