"""LatePaymentWorkflow: Stripe's word on a PaymentIntent of ours whose order's workflow has
closed (delivered, or cancelled and past its grace period) or never ran: the after-close
workflow.

The API starts it when a webhook about one of our PaymentIntents finds no running order
workflow, with the id `late-payment-<PaymentIntent id>`: a second webhook for the same
PaymentIntent joins the running one. For a PaymentIntent event it reads the PaymentIntent
and the order row, then refunds what is still held of a payment that does not pay its
order, or cancels a PaymentIntent nobody would now confirm. For a refund or dispute event
it reads the charge's amounts back, records them on the row, and flags what needs a person
(a dispute to answer, a refund of ours that failed: the money is owed). The refund key is
the order workflow's own, so the money goes back exactly once whoever asks. A PaymentIntent
with another deployment's owner marker, or of no order we have, is left alone. Like the
order's workflow it never fails: what no retry fixes parks it for ops (`NeedsAttention`,
the `retry` update)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from vult.domain import payments
from vult.domain.contracts import (
    ChargeFacts,
    LatePayment,
    OrderPayment,
    RecordPayment,
    ResolveOrder,
)
from vult.domain.failures import Failure
from vult.domain.money import from_minor_units
from vult.domain.stripe_events import MONEY_EVENTS
from workflows import attention, decisions, ops_view, steps
from workflows import declared_activities as declared
from workflows.decisions import Act
from workflows.order_actions import events as order_events

# A PaymentIntent mid-charge settles in seconds to days (bank debits); ask this often.
_SETTLE_WAIT = timedelta(minutes=10)
# A dispute takes weeks: ask about it this often.
_DISPUTE_WAIT = timedelta(hours=6)
_RETRY_AFTER = timedelta(minutes=15)
# A refund just made: looked at again this soon (a test-mode or instant refund has settled),
# then every _SETTLE_WAIT while it is pending.
_JUST_REFUNDED = timedelta(seconds=5)
_ROUNDS_PER_RUN = 100  # then continue as new, so the history stays short


# The signal that brings each event's type (the API sends it with the start).
LATE_EVENT_SIGNAL = "event"


def late_payment_workflow_id(payment_intent_id: str) -> str:
    return f"late-payment-{payment_intent_id}"


# PINNED: it lives minutes (a refund or a cancel, a few waits for a settling payment), so
# it finishes on the build it started on and its edits need no patch; an old build is
# drained of these quickly (docs/operations.md, "Deploying new code").
@workflow.defn(name="LatePaymentWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class LatePaymentWorkflow:
    def __init__(self) -> None:
        self._attention: str | None = None
        self._retry = False
        self._wait_for: timedelta | None = _SETTLE_WAIT  # None: until ops retry
        self._retry_asked = False
        self._resolved: str | None = None
        # Event types signalled and not handled yet: a round handles them all.
        self._events: list[str] = []
        self._done: list[str] = []  # what this run did, for its closing note

    @workflow.signal(name=LATE_EVENT_SIGNAL)
    def event(self, event_type: str) -> None:
        """Another event for this PaymentIntent: handled in the next round (now, if the run
        is waiting)."""
        if event_type not in self._events:
            self._events.append(event_type)
        self._retry = True

    @workflow.run
    async def run(self, late: LatePayment) -> str:
        self._attention = late.attention  # a flag raised before continue-as-new stays up
        for kind in late.more_events:
            self.event(kind)
        kinds = {late.event_type}
        for _ in range(_ROUNDS_PER_RUN):
            if self._resolved is not None:
                if self._attention is not None:
                    attention.unflag(True)
                resolved = f"resolved by ops: {self._resolved}"
                workflow.set_current_details(resolved)
                return resolved
            kinds.update(self._events)
            self._events.clear()
            # Ops' retry is for the round after it came, and for that one only.
            asked, self._retry_asked = self._retry_asked, False
            try:
                note = await self._settle(late, kinds, asked)
            except (FailureError, asyncio.CancelledError) as err:
                self._park(str(err) or type(err).__name__)
                await self._wait(_RETRY_AFTER)
                continue
            if note is not None and not self._events:
                if self._attention is not None:
                    attention.unflag(True)
                workflow.set_current_details(note)
                return note
            if self._events:
                continue  # an event came meanwhile: a round for it now
            await self._wait(self._wait_for)
        workflow.continue_as_new(
            late.model_copy(
                update={
                    "attention": self._attention,
                    "more_events": sorted(kinds | set(self._events)),
                }
            )
        )

    async def _settle(self, late: LatePayment, kinds: set[str], asked: bool) -> str | None:
        """The note of what was done for every kind of event seen, or None to ask again
        later."""
        self._wait_for = _SETTLE_WAIT
        notes: list[str | None] = []
        if kinds & MONEY_EVENTS:
            notes.append(await self._record_money(late, asked))  # a dispute, ops: longer
        if kinds - MONEY_EVENTS:
            notes.append(await self._settle_intent(late))
        if any(n is None for n in notes):
            return None
        return "; ".join([*self._done, *(n for n in notes if n is not None)])

    async def _settle_intent(self, late: LatePayment) -> str | None:
        """A PaymentIntent event: refund what pays no order, cancel what could still be
        paid. The note of what was done, or None to ask again later."""
        pi = late.payment_intent_id
        try:
            intent = await declared.retrieve_payment_intent(pi)
        except (ActivityError, ApplicationError) as err:
            cause = steps.application_cause(err)
            if cause is None or cause.type != Failure.PAYMENT_REFUSED:
                raise
            return f"Stripe has no PaymentIntent {pi} for us: nothing to do"
        order_id = late.order_id
        if order_id is None or (intent.order_id is not None and intent.order_id != str(order_id)):
            return f"{pi} names no order of ours: left alone"
        if late.owner and intent.owner is not None and intent.owner != late.owner:
            return f"{pi} belongs to {intent.owner!r}, not to this deployment: left alone"
        order = await declared.read_order_payment(order_id)
        if not order.exists:
            return f"{pi} names order {order_id}, which we do not have: left alone"
        decision = decisions.on_late_payment(intent, order)
        if decision.act == Act.REFUND:
            facts = await declared.read_charge(pi)
            if payments.pending_refunds(facts):
                return None  # a refund settling (ours, say): asked again until it has
            # What ops paid back another way (failed refunds they resolved) is not owed.
            paid_back = sum(
                r.amount for r in facts.refunds if r.refund_id in order.settled_refund_ids
            )
            owed = payments.held(facts) - paid_back
            if owed <= 0:
                if paid_back:
                    return f"{decision.note}: paid back another way (resolved by ops)"
                return f"{decision.note}: nothing of it is held any more"
            refund = await steps.refund_payment(order_id, pi, amount=owed)
            ops_view.count("vult_refunds_total", "Refunds issued")
            workflow.logger.warning("Refunded late payment %s (%s)", pi, refund.refund_id)
            self._done.append(f"{decision.note}: {refund.refund_id} ({refund.status})")
            self._wait_for = _JUST_REFUNDED
            return None  # watched until Stripe settles it
        if decision.act == Act.CANCEL:
            settled = await steps.cancel_payment_intent(order_id, pi)
            if settled.status == "succeeded":  # paid as we cancelled: refund it
                return await self._settle_intent(late)
            return f"{decision.note}: {settled.status}"
        if decision.act == Act.WAIT:
            workflow.set_current_details(decision.note)
            return None
        return decision.note

    async def _record_money(self, late: LatePayment, asked: bool) -> str | None:
        """A refund or dispute event after the order's workflow closed: Stripe's amounts on
        the row; a person told of what only a person can settle. `asked`: ops' retry came
        for this round (a failed refund of ours is then made again)."""
        pi, order_id = late.payment_intent_id, late.order_id
        order = await declared.read_order_payment(order_id) if order_id is not None else None
        if order_id is None or order is None or not order.exists:
            return f"{late.event_type} for {pi}: no order of ours: left alone"
        facts = await declared.read_charge(pi)
        dispute_open = payments.dispute_open(facts)
        owed = [] if dispute_open else _owed(facts, order, order_id)
        if order.payment_intent_id == pi and facts.amount_captured > 0:
            dispute = facts.dispute
            await declared.record_payment(
                RecordPayment(
                    order_id=order_id,
                    at=workflow.now(),
                    # Owed money stays visible on the row whatever else Stripe says.
                    stripe_payment_status="refund_failed"
                    if owed and not asked
                    else payments.payment_status(facts),
                    amount_refunded=from_minor_units(facts.amount_refunded, facts.currency.upper()),
                    dispute_status=dispute.status if dispute else None,
                    events=order_events.stripe_events(order_id, None, facts, {}),
                )
            )
        summary = f"{pi}: captured {facts.amount_captured}, refunded {facts.amount_refunded}"
        if dispute_open:
            assert facts.dispute is not None
            due = facts.dispute.evidence_due_by
            self._flag(
                f"dispute {facts.dispute.dispute_id} of {pi} is {facts.dispute.status}; evidence "
                f"due by {due:%Y-%m-%d %H:%M} UTC"
                if due
                else f"dispute of {pi} is open"
            )
            self._wait_for = _DISPUTE_WAIT
            return None
        if owed and asked:
            held = payments.held(facts)
            for again in owed:
                amount = min(again.amount, held) if again.amount is not None else held
                if amount <= 0:
                    break
                refund = await steps.refund_payment(
                    order_id, pi, retry=again.retry, amount=amount, key=again.key
                )
                held -= amount
                self._done.append(f"refunded again: {refund.refund_id} ({refund.status})")
                ops_view.count("vult_refunds_total", "Refunds issued")
            self._unflag()
            self._wait_for = _JUST_REFUNDED
            # Watched like every refund of ours: the next rounds read it until Stripe
            # settles it (a card refund can still fail).
            return None
        if owed:
            amounts = sum(a.amount or payments.held(facts) for a in owed)
            self._flag(
                f"{len(owed)} refund(s) of {pi} failed at Stripe and "
                f"{min(amounts, payments.held(facts))} (minor units) is owed to the customer: "
                "retry to refund again, or pay them back another way"
            )
            self._wait_for = None  # only ops decide: a second refund might pay back twice
            return None
        if payments.pending_refunds(facts):
            return None
        return summary

    def _unflag(self) -> None:
        if self._attention is not None:
            attention.unflag(True)
            self._attention = None
            workflow.set_current_details("a refund made again: watched until Stripe settles it")

    def _flag(self, reason: str) -> None:
        first = self._attention is None
        self._attention = reason[:500]
        attention.flag(True, self._attention, first)
        workflow.set_current_details(f"NEEDS ATTENTION: {self._attention}")

    def _park(self, reason: str) -> None:
        self._flag(f"late payment: {reason}")

    async def _wait(self, delay: timedelta | None) -> None:
        if self._retry_asked or self._events:
            return  # ops or Stripe spoke during the round: the next one is for them
        self._retry = False
        try:
            await workflow.wait_condition(lambda: self._retry, timeout=delay)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            attention.refuse_cancellation()

    @workflow.update
    async def retry(self) -> None:
        """Ops: try again now (and refund again a refund that failed)."""
        self._retry = True
        self._retry_asked = True

    @workflow.update
    async def resolve(self, command: ResolveOrder) -> None:
        """Ops: handled outside the service (the customer paid back another way, the
        dispute answered in the Dashboard): nothing more is done, the flag clears."""
        self._resolved = command.note.strip()
        self._retry = True

    @resolve.validator
    def _validate_resolve(self, command: ResolveOrder) -> None:
        if not (0 < len(command.note.strip()) <= 1000):
            raise ApplicationError(
                "A note of 1 to 1000 characters is required", type=Failure.INVALID_TRANSITION
            )

    @workflow.query
    def needs_attention(self) -> str | None:
        return self._attention


@dataclass(frozen=True)
class _Again:
    """A refund of ours to make again: under `key` (a step's `<key>:again-<n>`), or the
    order's refund key with `retry`; `amount` None: what is still held."""

    key: str | None
    retry: int
    amount: int | None


def _owed(facts: ChargeFacts, order: OrderPayment, order_id: object) -> list[_Again]:
    """The refunds of ours (a cancellation's, a return's, an unshipped share's, one above
    the share) that failed at Stripe and were not made again, while money is still held:
    what is still owed. The order's own refund only when the order must not keep the
    payment (a return's or a share's whatever the order's status)."""
    if payments.held(facts) <= 0 or payments.pending_refunds(facts):
        return []
    ours = f"order:{order_id}:"
    cancel_key = f"{ours}refund:{facts.payment_intent_id}"
    steps_of: dict[str, list[str]] = {}  # a purpose's first key -> the statuses of its tries
    amounts: dict[str, int] = {}
    settled: set[str] = set()  # purposes one of whose tries ops settled (paid back another way)
    for r in facts.refunds:
        key = r.key or ""
        if not key.startswith(ours):
            continue  # not ours
        first = cancel_key if key.startswith(cancel_key) else payments.refund_step(key)
        if r.refund_id in order.settled_refund_ids:
            settled.add(first)
        steps_of.setdefault(first, []).append(r.status)
        amounts.setdefault(first, r.amount)
    for first in settled:
        del steps_of[first]
    keeps = order.status in decisions.PAID and order.payment_intent_id == facts.payment_intent_id
    owed = []
    for first, statuses in sorted(steps_of.items()):
        if any(status not in payments.DEAD_REFUND for status in statuses):
            continue  # made again already, or it stands
        if first == cancel_key:
            if not keeps:
                owed.append(_Again(key=None, retry=len(statuses), amount=None))
        else:
            owed.append(
                _Again(key=payments.again_key(first, len(statuses)), retry=0, amount=amounts[first])
            )
    return owed
