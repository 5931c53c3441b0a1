"""The payment decisions and timers as pure functions (HandleWebhookHandlerTests, spec 8.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vult.domain.contracts import (
    Money,
    OrderState,
    OrderTiming,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
    Payments,
    RefundInfo,
)
from vult.domain.status import OrderStatus
from workflows.decisions import Act, Timer, deadlines, finished, on_payment_intent, reconcile_delay

S = OrderStatus
ORDER = "6f1c2a3e-aaaa-4c1b-9a55-1d2f8e9a0001"
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def state(
    status: OrderStatus,
    *,
    current: str = "pi_2",
    all_pis: tuple[str, ...] = ("pi_1", "pi_2"),
    refunded: tuple[str, ...] = (),
) -> OrderState:
    return OrderState(
        status=status,
        created_at=T0,
        payments=Payments(
            current=PaymentIntentInfo(
                payment_intent_id=current, client_secret="s", amount=10800, currency="usd"
            ),
            intent_ids=list(all_pis),
        ),
        money=Money(
            refunds={
                pi: RefundInfo(
                    refund_id=f"re_{pi}", status="succeeded", amount=10800, currency="usd"
                )
                for pi in refunded
            }
        ),
    )


def intent(
    pi: str = "pi_2",
    status: str = "succeeded",
    amount: int = 10800,
    error: str | None = None,
    order_id: str | None = ORDER,
) -> PaymentIntentSnapshot:
    return PaymentIntentSnapshot(
        payment_intent_id=pi,
        status=status,
        amount=amount,
        amount_received=amount,
        currency="usd",
        last_error_message=error,
        order_id=order_id,
    )


@pytest.mark.parametrize("status", [S.PaymentProcessing, S.Failed])
def test_success_on_the_current_intent_confirms(status: OrderStatus) -> None:
    assert on_payment_intent(state(status), ORDER, intent()).act == Act.CONFIRM


@pytest.mark.parametrize("status", [S.Confirmed, S.Processing, S.Shipped, S.Delivered])
def test_success_once_confirmed_or_later_does_nothing(status: OrderStatus) -> None:
    assert on_payment_intent(state(status), ORDER, intent()).act == Act.NOTHING


def test_success_after_cancellation_is_refunded() -> None:
    assert on_payment_intent(state(S.Cancelled), ORDER, intent()).act == Act.REFUND


def test_success_on_a_superseded_intent_is_refunded_whatever_the_order_status() -> None:
    for status in S:
        assert on_payment_intent(state(status), ORDER, intent("pi_1")).act == Act.REFUND


def test_an_intent_already_refunded_is_never_refunded_again() -> None:
    decision = on_payment_intent(state(S.Cancelled, refunded=("pi_2",)), ORDER, intent())
    assert decision.act == Act.NOTHING


def test_a_wrong_amount_is_refunded_and_fails_the_attempt() -> None:
    decision = on_payment_intent(state(S.PaymentProcessing), ORDER, intent(amount=1))
    assert (decision.act, decision.also_fail) == (Act.REFUND, True)


def test_an_intent_of_another_order_is_ignored() -> None:
    foreign = intent("pi_9", order_id="someone-else")
    assert on_payment_intent(state(S.PaymentProcessing), ORDER, foreign).act == Act.NOTHING


def test_a_decline_fails_only_a_paying_order() -> None:
    declined = intent(status="requires_payment_method", error="Your card was declined.")
    decision = on_payment_intent(state(S.PaymentProcessing), ORDER, declined)
    assert (decision.act, decision.error_message) == (Act.FAIL, "Your card was declined.")
    assert on_payment_intent(state(S.Confirmed), ORDER, declined).act == Act.NOTHING


def test_a_canceled_intent_fails_a_paying_order() -> None:
    decision = on_payment_intent(state(S.PaymentProcessing), ORDER, intent(status="canceled"))
    assert decision.act == Act.FAIL and decision.stripe_status == "canceled"


@pytest.mark.parametrize("stripe_status", ["processing", "requires_action"])
def test_intermediate_states_are_recorded_not_acted_on(stripe_status: str) -> None:
    decision = on_payment_intent(state(S.PaymentProcessing), ORDER, intent(status=stripe_status))
    assert (decision.act, decision.stripe_status) == (Act.RECORD, stripe_status)


def test_timers_follow_the_status() -> None:
    timing = OrderTiming()
    pending = state(S.Pending)
    assert deadlines(pending, timing) == [(T0 + timedelta(hours=24), Timer.PAYMENT_WINDOW)]
    paying = state(S.PaymentProcessing)
    paying.payments.next_reconcile_at = T0 + timedelta(minutes=15)
    assert [t for _, t in deadlines(paying, timing)] == [Timer.RECONCILE, Timer.PAYMENT_WINDOW]
    assert deadlines(state(S.Confirmed), timing) == []
    cancelled = state(S.Cancelled)
    cancelled.cancelling.at = T0
    assert deadlines(cancelled, timing) == [(T0 + timedelta(days=3), Timer.GRACE_OVER)]
    assert not finished(cancelled, timing, T0 + timedelta(days=2))
    assert finished(cancelled, timing, T0 + timedelta(days=3))
    assert finished(state(S.Delivered), timing, T0)


def test_reconciliation_backs_off_to_its_cap() -> None:
    timing = OrderTiming(
        reconcile_after=timedelta(minutes=15), reconcile_max_interval=timedelta(hours=1)
    )
    assert [reconcile_delay(timing, n) for n in range(5)] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=1),
        timedelta(hours=1),
    ]
