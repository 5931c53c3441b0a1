"""Stripe's amounts and what they mean for an order (vult/domain/payments.py)."""

from __future__ import annotations

import pytest

from vult.domain import payments
from vult.domain.contracts import ChargeFacts, DisputeInfo, RefundInfo


def refund(amount: int, status: str = "succeeded", key: str | None = None) -> RefundInfo:
    return RefundInfo(
        refund_id=f"re_{amount}", status=status, amount=amount, currency="usd", key=key
    )


def facts(refunds: list[RefundInfo] = [], dispute: str | None = None) -> ChargeFacts:  # noqa: B006
    live = sum(r.amount for r in refunds if r.status not in payments.DEAD_REFUND)
    return ChargeFacts(
        payment_intent_id="pi_1",
        currency="usd",
        amount_captured=10000,
        amount_refunded=live,
        refunds=refunds,
        dispute=DisputeInfo(dispute_id="dp_1", status=dispute, amount=10000) if dispute else None,
    )


@pytest.mark.parametrize(
    ("charge", "status", "held"),
    [
        (facts(), "succeeded", 10000),
        (facts([refund(1000)]), "partially_refunded", 9000),
        (facts([refund(1000), refund(9000)]), "refunded", 0),
        (facts([refund(10000, "pending")]), "refund_pending", 0),
        (facts([refund(10000, "failed")]), "succeeded", 10000),
        (facts(dispute="needs_response"), "disputed", 0),
        # An inquiry withdraws nothing: the money is still held.
        (facts(dispute="warning_under_review"), "disputed", 10000),
        (facts(dispute="warning_closed"), "succeeded", 10000),
        # An appeal of a chargeback: the money stays withdrawn until it is decided.
        (facts(dispute="appeal_needs_response"), "disputed", 0),
        (facts(dispute="appeal_under_review"), "disputed", 0),
        (facts(dispute="lost"), "dispute_lost", 0),
        (facts([refund(2500)], dispute="won"), "partially_refunded", 7500),
    ],
)
def test_the_payment_status_and_what_is_held_follow_stripes_amounts(
    charge: ChargeFacts, status: str, held: int
) -> None:
    assert payments.payment_status(charge) == status
    assert payments.held(charge) == held


def test_only_our_live_refund_under_the_same_key_is_reused() -> None:
    key = "order:x:refund:pi_1"
    dashboard = refund(1000)
    failed = refund(9000, "failed", key)
    assert payments.our_refund(facts([dashboard, failed]), key) is None
    again = refund(9000, "pending", key)
    assert payments.our_refund(facts([dashboard, again]), key) == again
    assert payments.our_refund(facts([again]), key + ":2") is None


def test_fully_refunded_needs_money_to_have_been_captured() -> None:
    assert payments.fully_refunded(facts([refund(10000)]))
    assert not payments.fully_refunded(facts([refund(9999)]))
    assert not payments.fully_refunded(ChargeFacts(payment_intent_id="pi_2"))
    assert not payments.fully_refunded(None)


@pytest.mark.parametrize(
    ("status", "refundable", "blocked"),
    [
        ("needs_response", False, True),
        ("appeal_under_review", False, True),
        ("warning_needs_response", True, False),
        # Stripe's word wins: an inquiry whose charge it will not refund blocks too.
        ("warning_under_review", False, True),
        ("won", False, False),
        ("lost", False, False),
    ],
)
def test_a_refund_is_blocked_only_by_an_open_dispute_stripe_will_not_refund(
    status: str, refundable: bool, blocked: bool
) -> None:
    charge = facts(dispute=status)
    assert charge.dispute is not None
    charge.dispute.is_charge_refundable = refundable
    assert payments.refund_blocked(charge) is blocked
    assert payments.dispute_open(charge) is (status not in ("won", "lost"))
