"""A resumed run learns the refunds it watched (a return's, an unshipped share's) from
Stripe's list: one that failed and was not made again is owed; one ops settled is not."""

from __future__ import annotations

from vult.domain.contracts import ChargeFacts, Money, OrderState, RefundInfo
from workflows.decisions import adopt_watched_refunds, watched_owed

OURS = "order:11111111-1111-1111-1111-111111111111:"
KEY = f"{OURS}unshipped:pi_1"


def _refund(refund_id: str, key: str, status: str) -> RefundInfo:
    return RefundInfo(refund_id=refund_id, status=status, amount=5400, currency="usd", key=key)


def _facts(*newest_first: RefundInfo) -> ChargeFacts:
    return ChargeFacts(payment_intent_id="pi_1", amount_captured=10800, refunds=list(newest_first))


def test_a_failed_refund_made_again_and_failed_is_owed_with_its_tries_counted() -> None:
    state = OrderState()
    facts = _facts(
        _refund("re_2", f"{KEY}:again-1", "failed"),
        _refund("re_1", KEY, "failed"),
        _refund("re_other", "someone else's", "succeeded"),
        _refund("re_cancel", f"{OURS}refund:pi_1", "failed"),  # a cancellation's: not watched
    )
    adopt_watched_refunds(state, "pi_1", facts, OURS)
    (owed,) = watched_owed(state, "pi_1")
    assert (owed.key, owed.refund_id, owed.retries, owed.amount) == (KEY, "re_2", 1, 5400)
    assert list(state.money.watched_refunds) == [KEY]


def test_one_that_went_through_on_a_later_try_is_not_owed() -> None:
    state = OrderState()
    facts = _facts(_refund("re_2", f"{KEY}:again-1", "succeeded"), _refund("re_1", KEY, "failed"))
    adopt_watched_refunds(state, "pi_1", facts, OURS)
    assert watched_owed(state, "pi_1") == []
    assert state.money.watched_refunds[KEY].status == "succeeded"


def test_a_purpose_ops_settled_on_any_try_is_not_owed_again() -> None:
    state = OrderState(money=Money(settled_refund_ids=["re_2"]))
    facts = _facts(_refund("re_2", f"{KEY}:again-1", "failed"), _refund("re_1", KEY, "failed"))
    adopt_watched_refunds(state, "pi_1", facts, OURS)
    assert watched_owed(state, "pi_1") == [] and state.money.watched_refunds == {}
