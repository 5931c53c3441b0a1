"""The order's payment decisions as pure functions of its state and Stripe's answer.

No Temporal here: the workflow calls these, then carries out what they decide. That keeps
every rule testable on its own and the workflow a thin sequence of decide-then-act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from vult.domain import payments
from vult.domain.contracts import (
    ChargeFacts,
    HoldPhase,
    OrderPayment,
    OrderState,
    OrderTiming,
    PaymentIntentSnapshot,
    RefundInfo,
    WatchedRefund,
)
from vult.domain.status import Clock, OrderStatus, starts

S = OrderStatus


class Act(StrEnum):
    NOTHING = "nothing"
    CONFIRM = "confirm"  # from PaymentProcessing, or from Failed through PaymentProcessing
    FAIL = "fail"  # PaymentProcessing -> Failed, with Stripe's reason
    REFUND = "refund"  # money the order must not keep
    RECORD = "record"  # note Stripe's status on the order without a transition
    CANCEL = "cancel"  # a PaymentIntent nobody will watch any more: close it at Stripe
    WAIT = "wait"  # mid-charge: ask again later


@dataclass(frozen=True)
class Decision:
    act: Act
    note: str
    stripe_status: str | None = None
    error_message: str | None = None
    also_fail: bool = False  # with REFUND: the current attempt failed too


def is_current(state: OrderState, pi: str) -> bool:
    """Is `pi` the order's current PaymentIntent (the one a successful payment confirms)?"""
    return state.payments.current is not None and state.payments.current.payment_intent_id == pi


def _wrong_amount(
    state: OrderState, intent: PaymentIntentSnapshot, act: Act, took: str, undo: str
) -> Decision | None:
    """A payment for another amount or currency than the order's is undone (`act`), never
    confirmed; the current attempt fails."""
    assert state.payments.current is not None
    expected = (state.payments.current.amount, state.payments.current.currency)
    if (intent.amount, intent.currency) == expected:
        return None
    return Decision(
        act,
        f"{intent.payment_intent_id} {took} {intent.amount} {intent.currency}, but the order "
        f"expects {expected[0]} {expected[1]}: {undo}, not confirming",
        error_message="The payment did not match the order total",
        also_fail=state.status == S.PaymentProcessing,
    )


def on_payment_intent(state: OrderState, order_id: str, intent: PaymentIntentSnapshot) -> Decision:
    """What Stripe's current word on one PaymentIntent means for the order."""
    pi = intent.payment_intent_id
    if pi not in state.payments.intent_ids and intent.order_id != order_id:
        return Decision(Act.NOTHING, f"{pi} does not belong to this order")
    current = is_current(state, pi)
    status = state.status

    if intent.status == "requires_capture":
        # Capture at shipment: the card is authorized, nothing is taken yet.
        if pi == state.hold.renewal and status != S.Cancelled:
            return Decision(Act.NOTHING, f"{pi} is the renewal of the authorization under way")
        if not current or status == S.Cancelled:
            return Decision(Act.CANCEL, f"{pi} is authorized but pays nothing: releasing it")
        if status not in (S.PaymentProcessing, S.Failed):
            return Decision(Act.NOTHING, f"{pi} is authorized; order already {status}")
        wrong = _wrong_amount(state, intent, Act.CANCEL, "authorized", "releasing")
        if wrong is not None:
            return wrong
        return Decision(
            Act.CONFIRM, f"{pi} is authorized: order confirmed", stripe_status="authorized"
        )

    if intent.status == "succeeded":
        if pi in state.money.refunds:
            return Decision(Act.NOTHING, f"{pi} succeeded and was already refunded")
        if not current:
            return Decision(Act.REFUND, f"{pi} succeeded but was superseded: refunding")
        if status == S.Cancelled:
            return Decision(Act.REFUND, f"{pi} succeeded after the order was cancelled: refunding")
        if status not in (S.PaymentProcessing, S.Failed):
            return Decision(Act.NOTHING, f"{pi} succeeded; order already {status}")
        wrong = _wrong_amount(state, intent, Act.REFUND, "succeeded for", "refunding")
        if wrong is not None:
            return wrong
        return Decision(Act.CONFIRM, f"{pi} succeeded: order confirmed", stripe_status="succeeded")

    if not current:
        return Decision(Act.NOTHING, f"{pi} is {intent.status}: not the current PaymentIntent")
    if intent.status == "requires_payment_method" and intent.last_error_message:
        if status != S.PaymentProcessing:
            return Decision(Act.NOTHING, f"{pi} failed; order already {status}")
        return Decision(
            Act.FAIL,
            f"{pi} failed: {intent.last_error_message}",
            stripe_status="failed",
            error_message=intent.last_error_message,
        )
    if intent.status == "canceled" and status == S.PaymentProcessing:
        return Decision(
            Act.FAIL,
            f"{pi} was canceled at Stripe",
            stripe_status="canceled",
            error_message="The payment was canceled",
        )
    if intent.status in ("processing", "requires_action") and status == S.PaymentProcessing:
        return Decision(Act.RECORD, f"{pi} is {intent.status}", stripe_status=intent.status)
    return Decision(Act.NOTHING, f"{pi} is {intent.status}: nothing to do")


class Timer(StrEnum):
    PAYMENT_WINDOW = "payment window"
    RECONCILE = "reconcile"
    GRACE_OVER = "grace period over"
    RETRY = "retry a parked step"
    DISPUTE_EVIDENCE = "dispute evidence reminder"
    MONEY_IN_FLIGHT = "money in flight"
    CANCEL_ASK = "ask Stripe again to cancel"
    # Not a clock: the first work of a resumed run, done before anything else.
    CATCH_UP = "catch up with Stripe after the resume"
    AUTHORIZATION_REMINDER = "authorization lapses soon"
    AUTHORIZATION_EXPIRED = "authorization lapsed"
    RETURN_WINDOW_OVER = "return window over"


def adopt_our_refunds(state: OrderState, pi: str, facts: ChargeFacts, ours: str) -> None:
    """A resumed run knows no refunds: take those this service made of `pi` from Stripe's
    list (their metadata carries the refund's key, which starts with `ours`). A live one is
    the refund (so nothing is refunded twice); a failed one is money still owed."""
    for refund in reversed(facts.refunds):  # oldest first
        if refund.key is None or not refund.key.startswith(ours):
            continue
        if refund.refund_id in state.money.settled_refund_ids:
            continue  # failed, and ops paid the customer back another way (`resolve`)
        if refund.status in payments.DEAD_REFUND:
            failed = state.money.failed_refunds.setdefault(pi, [])
            if refund.refund_id not in failed:
                failed.append(refund.refund_id)
        else:
            state.money.refunds[pi] = refund


# What each kind of refund of ours is for, by the word its key carries after the order id.
_WATCHED_KINDS = MappingProxyType(
    {
        "unshipped": "the share of the lines not shipped",
        "above-share": "what was captured above the shipment's share",
        "return": "a return",
    }
)


def adopt_watched_refunds(state: OrderState, pi: str, facts: ChargeFacts, ours: str) -> None:
    """A resumed run knows no watched refunds (a return's, an unshipped share's, one above
    the share): take those this service made of `pi` from Stripe's list by their keys
    (`ours` is the order's key prefix), each purpose with its latest try, so one that
    failed and was not made again is money still owed (and `retry` makes it again under
    its next key). Refunds ops settled by hand are left out."""
    tries: dict[str, list[RefundInfo]] = {}
    for refund in reversed(facts.refunds):  # oldest first
        key = refund.key or ""
        kind = key.removeprefix(ours).split(":", 1)[0]
        if key.startswith(ours) and kind in _WATCHED_KINDS:
            tries.setdefault(payments.refund_step(key), []).append(refund)
    settled = set(state.money.settled_refund_ids)
    for key, made in tries.items():
        if key in state.money.watched_refunds or settled & {r.refund_id for r in made}:
            continue  # known, or one of its tries ops settled: its purpose is settled
        latest = made[-1]
        state.money.watched_refunds[key] = WatchedRefund(
            payment_intent_id=pi,
            key=key,
            what=_WATCHED_KINDS[key.removeprefix(ours).split(":", 1)[0]],
            amount=made[0].amount,
            refund_id=latest.refund_id,
            status=latest.status,
            retries=len(made) - 1,
        )


def refund_owed(state: OrderState, pi: str, facts: ChargeFacts) -> bool:
    """A refund of ours failed, none went through since, and the money is still held: it
    is owed, and only ops' `retry` asks Stripe again."""
    return (
        bool(state.money.failed_refunds.get(pi))
        and pi not in state.money.refunds
        and payments.held(facts) > 0
        and not state.money.retry_asked
    )


def money_in_flight(state: OrderState) -> list[str]:
    """PaymentIntents whose money may still move: a refund of ours pending at Stripe, or a
    dispute open. The workflow does not close while there is one."""
    pending = {
        pi
        for pi, refund in state.money.refunds.items()
        if refund.status in ("pending", "requires_action")
    }
    pending |= {
        w.payment_intent_id
        for w in state.money.watched_refunds.values()
        if w.status in ("pending", "requires_action")
    }
    disputed = {pi for pi, facts in state.money.charges.items() if payments.dispute_open(facts)}
    return sorted(pending | disputed)


def watched_owed(state: OrderState, pi: str) -> list[WatchedRefund]:
    """Refunds of `pi` this service made (other than a cancellation's) that failed at Stripe
    and are not made again yet: money still owed."""
    return [
        w
        for w in state.money.watched_refunds.values()
        if w.payment_intent_id == pi and w.status in payments.DEAD_REFUND
    ]


def refunds_owed(state: OrderState) -> bool:
    """A refund of this service failed at Stripe and is not made again yet."""
    return bool(state.money.failed_refunds) or any(
        w.status in payments.DEAD_REFUND for w in state.money.watched_refunds.values()
    )


def settle_watched(state: OrderState, pi: str, facts: ChargeFacts) -> list[WatchedRefund]:
    """Take Stripe's word on the watched refunds of `pi` (a succeeded one stays watched: a
    card refund can still fail later); returns those that have just failed."""
    failed = []
    for watched in state.money.watched_refunds.values():
        if watched.payment_intent_id != pi:
            continue
        found = next((r for r in facts.refunds if r.refund_id == watched.refund_id), None)
        if found is None or found.status == watched.status:
            continue
        if found.status in payments.DEAD_REFUND:
            failed.append(watched)
        watched.status = found.status
    return failed


def _evidence_reminder(state: OrderState, timing: OrderTiming) -> datetime | None:
    pi = state.payments.current.payment_intent_id if state.payments.current else None
    facts = state.money.charges.get(pi) if pi else None
    dispute = facts.dispute if facts else None
    if dispute is None or dispute.evidence_due_by is None or not payments.dispute_open(facts):
        return None
    if state.ops.dispute_reminded == dispute.dispute_id:
        return None
    return dispute.evidence_due_by - timing.dispute_reminder


def deadlines(state: OrderState, timing: OrderTiming) -> list[tuple[datetime, Timer]]:
    """Every timer that applies in the order's current state, earliest first."""
    found: list[tuple[datetime, Timer]] = []
    status = state.status
    if starts(status, Clock.PAYMENT_WINDOW) and state.created_at is not None:
        window = state.created_at + timing.payment_window
        if state.payments.window_extended_until is not None:
            window = max(window, state.payments.window_extended_until)
        found.append((window, Timer.PAYMENT_WINDOW))
    if starts(status, Clock.RECONCILE) and state.payments.next_reconcile_at is not None:
        found.append((state.payments.next_reconcile_at, Timer.RECONCILE))
    if starts(status, Clock.CANCELLED_GRACE) and state.cancelling.at is not None:
        at = state.cancelling.at + timing.cancelled_grace
        found.append(_closing(state, timing, at, Timer.GRACE_OVER))
    if state.cancelling.pending is not None and state.cancelling.next_ask_at is not None:
        found.append((state.cancelling.next_ask_at, Timer.CANCEL_ASK))
    reminder = _evidence_reminder(state, timing)
    if reminder is not None:
        found.append((reminder, Timer.DISPUTE_EVIDENCE))
    lapses = authorization_lapses(state, timing)
    if lapses is not None:
        if not state.hold.reminded:
            found.append((lapses - timing.authorization_reminder, Timer.AUTHORIZATION_REMINDER))
        found.append((lapses, Timer.AUTHORIZATION_EXPIRED))
    if starts(status, Clock.RETURN_WINDOW) and state.fulfilment.delivered_at is not None:
        at = state.fulfilment.delivered_at + timing.return_window
        found.append(_closing(state, timing, at, Timer.RETURN_WINDOW_OVER))
    if state.ops.attention is not None and state.ops.retry_at is None:
        return []  # parked until ops act (a failed refund): nothing runs by itself
    if state.ops.retry_at is not None:
        # Parked: the stuck step is tried again at retry_at, not in a loop before it.
        found = [(max(due, state.ops.retry_at), timer) for due, timer in found]
        found.append((state.ops.retry_at, Timer.RETRY))
    return sorted(found)


def _closing(
    state: OrderState, timing: OrderTiming, at: datetime, closes: Timer
) -> tuple[datetime, Timer]:
    """The timer that may close the order at `at` (a cancelled order's grace, a delivered
    one's return window): with money still in flight (a refund pending, a dispute open),
    Stripe is asked again every RECONCILE_MAX_INTERVAL instead, until it has settled. A
    timer due with nothing to do would wake the loop at once, for ever."""
    if not money_in_flight(state):
        return at, closes
    checked = state.money.checked_at
    later = checked + timing.reconcile_max_interval if checked else at
    return max(at, later), Timer.MONEY_IN_FLIGHT


def authorization_lapses(state: OrderState, timing: OrderTiming) -> datetime | None:
    """When the card authorization of an order not yet captured lapses (capture at
    shipment), or None."""
    hold = state.hold
    if hold.phase != HoldPhase.HELD or not starts(state.status, Clock.AUTHORIZATION):
        return None
    assert hold.authorized_at is not None
    if hold.ends_at is not None:
        return hold.ends_at  # the charge's own capture_before, Stripe's word
    return hold.authorized_at + timing.authorization_validity


def backoff(first: timedelta, cap: timedelta, attempts: int) -> timedelta:
    """`first`, doubled per attempt, never past `cap` (nor below `first`)."""
    return min(first * (1 << min(attempts, 16)), max(cap, first))


def reconcile_delay(timing: OrderTiming, attempts: int) -> timedelta:
    """15 min, 30 min, 1 h, ... capped: how long to wait before asking Stripe again."""
    return backoff(timing.reconcile_after, timing.reconcile_max_interval, attempts)


def finished(state: OrderState, timing: OrderTiming, now: datetime) -> bool:
    if state.ops.attention is not None:
        return False  # never end while a step is stuck: money may still have to move
    if state.status == S.Delivered:
        # Open for returns until the window closes (delivered_at: since RETURN_WINDOW).
        at = state.fulfilment.delivered_at
        return at is None or now >= at + timing.return_window
    return (
        state.status == S.Cancelled
        and state.cancelling.at is not None
        and now >= state.cancelling.at + timing.cancelled_grace
    )


# A PaymentIntent someone could still pay: with its order's workflow closed, nobody would
# confirm or refund that payment, so it is cancelled instead.
PAYABLE_INTENT = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
PAID = frozenset({S.Confirmed, S.Processing, S.Shipped, S.Delivered})


def on_late_payment(intent: PaymentIntentSnapshot, order: OrderPayment) -> Decision:
    """Stripe's word on a PaymentIntent whose order's workflow has closed: only the
    PaymentIntent that paid the order keeps its money."""
    pi = intent.payment_intent_id
    pays_the_order = order.status in PAID and order.payment_intent_id == pi
    if intent.status == "succeeded":
        if pays_the_order:
            return Decision(Act.NOTHING, f"{pi} is the order's payment")
        return Decision(Act.REFUND, f"{pi} succeeded but does not pay its order: refunding")
    if intent.status in PAYABLE_INTENT:
        return Decision(Act.CANCEL, f"{pi} could still be paid: cancelling")
    if intent.status == "processing":
        return Decision(Act.WAIT, f"{pi} is mid-charge: asking again later")
    return Decision(Act.NOTHING, f"{pi} is {intent.status}: nothing to do")


def authorized(state: OrderState) -> bool:
    """Capture at shipment: the card is authorized and nothing captured yet."""
    return state.hold.authorized_at is not None and state.hold.captured is None
