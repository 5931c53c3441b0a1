"""Carrying out the order workflow's decisions: Stripe's word applied to the order, the
timers' work, cancellation with its refunds, and the one way the order row changes.

The workflow (workflows/order.py) owns the state and the lock and calls these one at a
time; the rules are in workflows/decisions.py, the activity calls in workflows/steps.py.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from vult.domain import fulfilment, payments
from vult.domain.contracts import (
    ChargeFacts,
    CreatePaymentIntent,
    OrderState,
    OrderTiming,
    PaymentEvent,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
    RecordReturn,
    RefundInfo,
    Resolution,
    ReturnRecord,
    ReturnRequest,
    ShipmentMoved,
    ShipOrder,
    StatusChange,
    WatchedRefund,
)
from vult.domain.failures import Failure
from vult.domain.money import from_minor_units, to_minor_units
from vult.domain.status import CANCELLABLE, UNPAID, OrderStatus, can_transition
from vult.domain.stripe_events import MONEY_EVENTS
from vult.temporal import search_attributes as sa
from workflows import attention, decisions, ops_view, steps
from workflows.decisions import Act, Timer
from workflows.steps import refused

S = OrderStatus


class OrderActions:
    def __init__(
        self,
        order_id: uuid.UUID,
        state: OrderState,
        timing: OrderTiming,
        index_for_search: bool,
        capture: str = "automatic",
    ) -> None:
        self.order_id = order_id
        self.state = state
        self.timing = timing
        self.index_for_search = index_for_search
        self.capture = capture  # PAYMENT_CAPTURE when the order was placed

    async def on_event(self, event: PaymentEvent) -> str:
        pi = event.payment_intent_id
        if pi not in self.state.payment_intent_ids:
            return f"{event.event_type} for {pi} ignored: not one of this order's PaymentIntents"
        if event.event_type in MONEY_EVENTS:
            return await self.learn(pi)
        # Act on what Stripe says now, not on the event alone: events arrive late, twice
        # and out of order, and the PaymentIntent's own status settles all three.
        return await self._apply(await steps.retrieve_payment_intent(pi))

    async def on_timer(self, timer: Timer) -> None:
        if timer == Timer.RECONCILE:
            await self._reconcile()
        elif timer == Timer.PAYMENT_WINDOW:
            await self._expire_payment_window()
        elif timer == Timer.DISPUTE_EVIDENCE:
            await self.remind_of_evidence()
        elif timer == Timer.CATCH_UP:
            await self.catch_up()
        elif timer == Timer.AUTHORIZATION_REMINDER:
            self._remind_of_authorization()
        elif timer == Timer.AUTHORIZATION_EXPIRED:
            await self._authorization_lapsed()
        elif timer == Timer.MONEY_IN_FLIGHT:
            # Cancelled, past its grace period, with a refund pending or a dispute open:
            # ask Stripe now and then, until the money has settled.
            self.state.money_checked_at = workflow.now()
            for pi in decisions.money_in_flight(self.state):
                await self.learn(pi)
        # GRACE_OVER needs nothing: the main loop sees the order is finished.

    async def catch_up(self) -> None:
        """The first work of a resumed run, whose state came from the order's row: Stripe's
        word now on every PaymentIntent of the order, applied as a webhook's would be, with
        the amounts of each that took money. What was mid-way when the previous run ended
        carries on from there: a payment that went through meanwhile confirms; money that
        pays no order is refunded, once (the refunds' keys are the previous run's); a
        cancellation whose refund Stripe holds is recorded; a refund of ours that failed
        waits for ops, as it did. Safe to run again (after a park): it only reads and
        applies."""
        state = self.state
        resumed = state.resumes[-1]
        assert state.status is not None
        await self._annotate(resumed_at=resumed.at)
        for pi in list(state.payment_intent_ids):
            intent = await steps.retrieve_payment_intent(pi)
            if intent.status == "succeeded" or intent.amount_received > 0:
                facts = await self._read_charge(pi)
                decisions.adopt_our_refunds(state, pi, facts, steps.refund_key(self.order_id, pi))
                if decisions.refund_owed(state, pi, facts):
                    await self._annotate(stripe_payment_status="refund_failed")
                    raise ApplicationError(
                        f"A refund of {pi} failed at Stripe before the order was resumed: the "
                        "money is still owed. Retry to refund again, or pay the customer back "
                        "another way",
                        type=Failure.REFUND_FAILED,
                        non_retryable=True,
                    )
            state.last_payment_note = f"resumed: {await self._apply(intent)}"
            current = decisions.is_current(state, pi)
            if intent.status == "requires_capture" and current and state.authorized_at is None:
                # Authorized before the resume (its time is not on the row): the lapse is
                # counted from now; Stripe refuses a capture after the real one anyway.
                state.authorized_at = workflow.now()
                state.authorization_ends_at = intent.capture_before
        payment = state.payment
        if payment is not None and payment.payment_intent_id in state.charges:
            await self.learn(payment.payment_intent_id)  # the row's amounts, ops' notices
            if state.status == S.Confirmed and payment.payment_intent_id in state.refunds:
                # The previous run was cancelling: Stripe holds its refund, the row was not
                # written yet.
                await self.cancel("Cancelled by customer (completed when the order was resumed)")
        state.refund_retry_asked = False
        state.catching_up = False

    async def _reconcile(self) -> None:
        """No webhook for a while: ask Stripe, and apply its answer as the webhook would."""
        payment = self.state.payment
        if self.state.status != S.PaymentProcessing or payment is None:
            return
        note = await self._apply(await steps.retrieve_payment_intent(payment.payment_intent_id))
        self.state.last_payment_note = f"reconciled: {note}"
        if self.state.status == S.PaymentProcessing:
            self.state.reconcile_attempts += 1
            self.state.next_reconcile_at = workflow.now() + decisions.reconcile_delay(
                self.timing, self.state.reconcile_attempts
            )

    async def _expire_payment_window(self) -> None:
        if self.state.status not in UNPAID:
            return
        if self.state.payment is not None:
            # Paid in time but not yet told? Then the order is confirmed, not cancelled.
            pi = self.state.payment.payment_intent_id
            intent = await steps.retrieve_payment_intent(pi)
            await self._apply(intent)
            if intent.status == "processing" and self.state.status in UNPAID:
                # Mid-charge (a bank debit, a slow card network): Stripe's outcome decides,
                # not the clock. Ask again later; a success confirms the order.
                self.state.window_extended_until = workflow.now() + self.timing.reconcile_after
                self.state.last_payment_note = f"{pi} is processing: the window waits for it"
                return
        if self.state.status in UNPAID:
            await self.cancel("payment window expired")

    # ---- carrying out decisions ------------------------------------------------------------

    async def _apply(self, intent: PaymentIntentSnapshot) -> str:
        decision = decisions.on_payment_intent(self.state, str(self.order_id), intent)
        status = self.state.status
        pi = intent.payment_intent_id
        if decision.act == Act.CONFIRM:
            if status == S.Failed:
                # The customer retried the same PaymentIntent and it went through.
                await self.change(S.Failed, S.PaymentProcessing)
            await self.change(
                S.PaymentProcessing, S.Confirmed, stripe_payment_status=decision.stripe_status
            )
            if decision.stripe_status == "authorized":
                self.state.authorized_at = workflow.now()
                self.state.authorization_ends_at = intent.capture_before
        elif decision.act == Act.CANCEL:
            # An authorization that pays nothing (superseded, after a cancel, the wrong
            # amount): released at Stripe.
            released = await self._release(pi)
            money: dict[str, str | Decimal | None] = {"stripe_payment_status": released.status}
            if released.status == "succeeded":
                # Captured meanwhile (by hand, in the Dashboard): it pays nothing, so it is
                # refunded, watched like every refund of ours.
                money = self._payment_fields(pi, await self._refund(pi))
            if decision.also_fail:
                await self.change(
                    S.PaymentProcessing,
                    S.Failed,
                    payment_error_message=decision.error_message,
                    **money,
                )
        elif decision.act == Act.FAIL:
            await self.change(
                S.PaymentProcessing,
                S.Failed,
                stripe_payment_status=decision.stripe_status,
                payment_error_message=decision.error_message,
            )
        elif decision.act == Act.RECORD and status is not None:
            await self._annotate(stripe_payment_status=decision.stripe_status)
        elif decision.act == Act.REFUND:
            refund = await self._refund(pi)
            if decision.also_fail:
                await self.change(
                    S.PaymentProcessing,
                    S.Failed,
                    stripe_payment_status="refunded",
                    payment_error_message=decision.error_message,
                )
            elif decisions.is_current(self.state, pi) and status is not None:
                await self._annotate(
                    stripe_refund_id=refund.refund_id if refund else None,
                    **self._payment_fields(pi, refund),
                )
            refund_id = refund.refund_id if refund else "nothing held"
            workflow.logger.warning("Refunded %s (%s): %s", pi, refund_id, decision.note)
        return decision.note

    async def cancel(self, reason: str, *, interactive: bool = False) -> None:
        status = self.state.status
        assert status in CANCELLABLE
        payment = self.state.payment
        refund: RefundInfo | None = None
        money: dict[str, str | Decimal | None]
        if payment is not None and status in (S.PaymentProcessing, S.Failed):
            pi = payment.payment_intent_id
            intent = await steps.ask_to_cancel(
                self.order_id, pi, self.state.cancel_asks, interactive=interactive
            )
            self.state.cancel_asks += 1
            if intent.status == "processing":
                # Mid-charge: Stripe cannot cancel it yet. Recorded; the workflow asks
                # again from its timer, and a success meanwhile confirms, then refunds.
                delay = decisions.backoff(
                    self.timing.in_flight_retry,
                    self.timing.reconcile_max_interval,
                    self.state.cancel_asks - 1,
                )
                self.state.next_cancel_ask_at = workflow.now() + delay
                if self.state.cancel_asks == 1:
                    # On the row: a run resumed from it completes the cancellation.
                    await self._annotate(pending_cancel_reason=reason)
                raise ApplicationError(
                    "The cancellation is recorded: the payment is being processed, and "
                    "the order is cancelled (any payment refunded) once it settles",
                    type=Failure.CANCEL_RECORDED,
                    non_retryable=True,
                )
            self.state.next_cancel_ask_at = None
            if intent.status == "succeeded":
                refund = await self._refund(pi)
                money = self._payment_fields(pi, refund)
            else:
                money = {"stripe_payment_status": intent.status}  # Stripe's word, read back
        elif payment is not None and status == S.Confirmed and self.authorized():
            # Capture at shipment, not captured yet: the authorization is released, nothing
            # was taken, nothing is refunded.
            # An ask of its own: an earlier one (a cancel recorded mid-charge) saved its
            # answer (`processing`) under its key, and Stripe would answer that again.
            ask = self.state.cancel_asks
            self.state.cancel_asks += 1
            intent = await steps.ask_to_cancel(
                self.order_id, payment.payment_intent_id, ask, interactive=interactive
            )
            if intent.status == "succeeded":  # captured meanwhile (by hand, in the Dashboard)
                refund = await self._refund(payment.payment_intent_id)
                money = self._payment_fields(payment.payment_intent_id, refund)
            else:
                money = {"stripe_payment_status": intent.status}
        elif payment is not None and status == S.Confirmed:
            refund = await self._refund(payment.payment_intent_id)
            money = self._payment_fields(payment.payment_intent_id, refund)
        else:
            money = {}
        await self.change(
            status,
            S.Cancelled,
            cancellation_reason=reason,
            stripe_refund_id=refund.refund_id if refund else None,
            **money,
        )
        attention.clear_notice(self.state, self.index_for_search, "unpaid")
        attention.clear_notice(self.state, self.index_for_search, "authorization")
        self.state.cancelled_at = workflow.now()
        self.state.cancellation_reason = reason

    async def _refund(self, pi: str) -> RefundInfo | None:
        """Refund what is still held of a PaymentIntent, exactly once (state here, the key
        at Stripe). None: nothing is held any more (refunded by someone else, a dispute
        lost), so nothing was asked of Stripe."""
        if pi in self.state.refunds:
            return self.state.refunds[pi]
        failed = len(self.state.failed_refunds.get(pi, []))
        facts = await self._read_charge(pi)
        if decisions.is_current(self.state, pi):
            self._notice(facts)  # a dispute closed while its events were lost, say
        if payments.refund_blocked(facts):
            raise ApplicationError(
                payments.refused_while_disputed(pi),
                type=Failure.DISPUTED,
                non_retryable=True,
            )
        key = steps.refund_key(self.order_id, pi, failed)
        found = payments.our_refund(facts, key)
        amount = payments.held(facts)
        if found is None and amount <= 0:
            return None
        refund = found or await steps.refund_payment(self.order_id, pi, retry=failed, amount=amount)
        self.state.refunds[pi] = refund
        if found is None:
            ops_view.count("vult_refunds_total", "Refunds issued")
            self.state.charges[pi] = _with_refund(facts, refund)
        return refund

    async def _read_charge(self, pi: str) -> ChargeFacts:
        facts = await steps.read_charge(pi)
        self.state.charges[pi] = facts
        return facts

    def _payment_fields(
        self, pi: str, refund: RefundInfo | None
    ) -> dict[str, str | Decimal | None]:
        """The row's payment columns after a refund (or none), from Stripe's amounts when
        they were read."""
        facts = self.state.charges.get(pi)
        if facts is None:  # a history from before the amounts were read
            assert refund is not None
            return {"stripe_payment_status": _refund_status(refund)}
        return {
            "stripe_payment_status": payments.payment_status(facts),
            "amount_refunded": self._major(facts.amount_refunded),
            "dispute_status": facts.dispute.status if facts.dispute else None,
        }

    def _major(self, minor: int) -> Decimal:
        assert self.state.currency is not None
        return from_minor_units(minor, self.state.currency)

    async def learn(self, pi: str) -> str:
        """Read the PaymentIntent's amounts back from Stripe (after a refund or dispute
        event, before fulfilment) and take them as the truth: the state, the row, the
        notices for ops. Our own refund that failed is still owed: it parks the order."""
        facts = await self._read_charge(pi)
        if self.state.refund_retry_asked and decisions.watched_owed(self.state, pi):
            await self._refund_watched_again(pi)
            facts = await self._read_charge(pi)
        newly_failed = decisions.settle_watched(self.state, pi, facts)
        known = self.state.refunds.get(pi)
        mine = next((r for r in facts.refunds if known and r.refund_id == known.refund_id), None)
        failed = mine is not None and mine.status in payments.DEAD_REFUND
        if mine is not None and not failed:
            self.state.refunds[pi] = mine
        again = self.state.refund_retry_asked and pi in self.state.failed_refunds
        if known is None and again and payments.held(facts) > 0:
            # Only ops' `retry` refunds again after a refund failed: they may have paid the
            # customer back another way (then they `resolve` instead).
            self.state.refund_retry_asked = False
            refund = await self._refund(pi)
            return f"refunded {pi} again: {refund.refund_id if refund else 'nothing held'}"
        if decisions.is_current(self.state, pi) and facts.amount_captured > 0:
            dispute = facts.dispute
            # Our refund failed and the money is still owed: the row says so until a
            # refund goes through (or ops resolve it), whatever later events say.
            owed = pi in self.state.failed_refunds and pi not in self.state.refunds
            owed = failed or (owed and payments.held(facts) > 0)
            owed = owed or bool(decisions.watched_owed(self.state, pi))
            await self._annotate(
                stripe_payment_status="refund_failed" if owed else payments.payment_status(facts),
                amount_refunded=self._major(facts.amount_refunded),
                dispute_status=dispute.status if dispute else None,
            )
            self._notice(facts)
        if newly_failed:
            lost = newly_failed[0]
            raise ApplicationError(
                f"The refund of {lost.amount} minor units for {lost.what} ({lost.refund_id}, "
                f"{pi}) {lost.status} at Stripe: the money is still owed. Retry to refund it "
                "again, or pay the customer back another way",
                type=Failure.REFUND_FAILED,
                non_retryable=True,
            )
        if failed:
            assert mine is not None
            del self.state.refunds[pi]
            self.state.failed_refunds.setdefault(pi, []).append(mine.refund_id)
            raise ApplicationError(
                f"Refund {mine.refund_id} of {pi} {mine.status} at Stripe: the money is "
                "still owed. Retry to refund again, or pay the customer back another way",
                type=Failure.REFUND_FAILED,
                non_retryable=True,
            )
        dispute_note = f", dispute {facts.dispute.status}" if facts.dispute else ""
        return (
            f"{pi}: captured {facts.amount_captured}, refunded {facts.amount_refunded}"
            f"{dispute_note} (minor units)"
        )

    def _notice(self, facts: ChargeFacts) -> None:
        """What ops must know of the paying PaymentIntent's amounts: no money held for an
        order not yet shipped, an open dispute (searchable as `Disputed`)."""
        state, indexed = self.state, self.index_for_search
        if not payments.still_paid(facts) and state.status in (S.Confirmed, S.Processing):
            attention.notify(
                state,
                indexed,
                "unpaid",
                f"No money is held for this order any more ({payments.payment_status(facts)} "
                "at Stripe): it is not fulfilled; cancel it, or settle it with the customer",
            )
        else:
            attention.clear_notice(state, indexed, "unpaid")
        dispute = facts.dispute
        if payments.dispute_open(facts):
            assert dispute is not None
            due = (
                f"{dispute.evidence_due_by:%Y-%m-%d %H:%M} UTC" if dispute.evidence_due_by else "?"
            )
            if "dispute" not in state.notices:
                ops_view.index(indexed, sa.DISPUTED.value_set(True))
                ops_view.count("vult_disputes_opened_total", "Disputes opened on orders' payments")
            attention.notify(
                state,
                indexed,
                "dispute",
                f"Dispute {dispute.dispute_id} ({dispute.reason or 'no reason'}) of "
                f"{dispute.amount} minor units is {dispute.status}: evidence due by {due}",
            )
        elif "dispute" in state.notices:
            ops_view.index(indexed, sa.DISPUTED.value_set(False))
            attention.clear_notice(state, indexed, "dispute")

    async def resolve(self, note: str) -> None:
        """Ops handled the problem outside the service: the flag and the stuck step go, the
        note stays (state, row, history); a pending cancellation is recorded as done."""
        state = self.state
        problem = "; ".join(p for p in (state.attention, *state.notices.values()) if p)
        state.resolutions.append(Resolution(at=workflow.now(), note=note, problem=problem))
        state.attention, state.retry_at, state.parked_events = None, None, []
        owed = [k for k, w in state.watched_refunds.items() if w.status in payments.DEAD_REFUND]
        # On the row too: the after-close workflow knows the order from it and Stripe.
        settled = [r for ids in state.failed_refunds.values() for r in ids] + [
            state.watched_refunds[k].refund_id for k in owed
        ]
        if state.failed_refunds or owed:
            # Paid back another way: no later event makes these refunds again.
            state.failed_refunds.clear()
            for key in owed:
                del state.watched_refunds[key]
        state.notices.clear()
        state.refund_retry_asked = False
        if state.pending_shipment is not None:  # a refused capture, settled outside
            state.pending_shipment = None
            state.authorization_over = True
        attention.unflag(self.index_for_search)
        ops_view.count("vult_orders_resolved_total", "Orders ops resolved by hand")
        status = state.status
        reason = state.pending_cancel
        if reason is not None and status in CANCELLABLE:
            await self.change(
                status,
                S.Cancelled,
                cancellation_reason=reason,
                resolution_note=note,
                settled_refund_ids=settled or None,
            )
            state.cancelled_at, state.cancellation_reason = workflow.now(), reason
        elif status is not None:
            await self._annotate(resolution_note=note[:1000], settled_refund_ids=settled or None)
        state.pending_cancel = None

    async def remind_of_evidence(self) -> None:
        """A day or more before a dispute's evidence is due: tell ops again."""
        pi = self.state.payment.payment_intent_id if self.state.payment else ""
        facts = self.state.charges.get(pi)
        dispute = facts.dispute if facts else None
        if dispute is None:
            return
        self.state.dispute_reminded = dispute.dispute_id
        if payments.dispute_open(facts):
            ops_view.count("vult_dispute_evidence_reminders_total", "Dispute evidence reminders")
            attention.notify(
                self.state,
                self.index_for_search,
                "dispute",
                f"Dispute {dispute.dispute_id}: evidence due by "
                f"{dispute.evidence_due_by:%Y-%m-%d %H:%M} UTC, soon: submit it in the Dashboard",
            )

    def _watch(self, pi: str, key: str, what: str, refund: RefundInfo) -> None:
        """Watch a refund this service made until Stripe settles it (a card refund can fail
        days later, even after it succeeded): a failure parks the order."""
        self.state.watched_refunds[key] = WatchedRefund(
            payment_intent_id=pi,
            key=key,
            what=what,
            amount=refund.amount,
            refund_id=refund.refund_id,
            status=refund.status,
        )

    async def _refund_watched_again(self, pi: str) -> None:
        """Ops' `retry` of refunds that failed at Stripe: each made again, under a fresh key
        of its step (never more than is held)."""
        self.state.refund_retry_asked = False
        for watched in decisions.watched_owed(self.state, pi):
            # The same key until it is made: a try that parks asks it again, not twice.
            again = watched.retries + 1
            refund = await steps.refund_payment(
                self.order_id, pi, amount=watched.amount, key=f"{watched.key}:again-{again}"
            )
            ops_view.count("vult_refunds_total", "Refunds issued")
            watched.refund_id, watched.status, watched.retries = (
                refund.refund_id,
                refund.status,
                again,
            )

    def authorized(self) -> bool:
        """Capture at shipment: the card is authorized and nothing captured yet."""
        return self.state.authorized_at is not None and self.state.captured is None

    def _to_capture(self) -> bool:
        """A shipment captures first: an authorization seen, or (capture at shipment,
        nothing captured) one not seen, whose Stripe amounts then decide (a resumed run
        whose authorization lapsed meanwhile is refused, never shipped unpaid)."""
        if self.authorized():
            return True
        return self.capture == "at_shipment" and self.state.captured is None

    # ---- shipping and returns ---------------------------------------------------------------

    async def ship(self, shipment: ShipOrder) -> None:
        """Processing -> Shipped. An authorized payment is captured first: the shipped
        lines' share (vult/domain/fulfilment.py), the rest of the authorization released;
        a capture Stripe refuses raises PaymentRefused and nothing is recorded. With
        automatic capture, a shipment of part of the lines refunds the rest's share."""
        state, order_id = self.state, self.order_id
        payment = state.payment
        wanted = {li.line_item_id: li.quantity for li in shipment.line_items or []} or None
        fields: dict[str, str | Decimal | datetime | None] = {}
        moved = state.shipment_moved
        if moved is not None:
            if moved.lines != wanted:
                raise refused(
                    "A shipment of other lines has already moved its money at Stripe (its "
                    "share captured, or the rest refunded) and was not recorded: send the same "
                    "shipment again"
                )
            if moved.amount_captured is not None:
                fields["amount_captured"] = moved.amount_captured
            if moved.payment_intent_id not in state.charges:
                await self._read_charge(moved.payment_intent_id)
            fields.update(self._payment_fields(moved.payment_intent_id, None))
        elif payment is not None and (wanted is not None or self._to_capture()):
            order = await steps.read_order_lines(order_id)
            amounts, lines = fulfilment.of(order)
            if wanted is not None and (
                problems := fulfilment.problems_with(lines, wanted, returning=False)
            ):
                raise refused("; ".join(problems))
            share = (
                order.total if wanted is None else fulfilment.shipped_share(amounts, lines, wanted)
            )
            assert state.currency is not None
            amount = to_minor_units(share, state.currency)
            pi = payment.payment_intent_id
            if self._to_capture():
                await self._capture(pi, amount)
                captured = from_minor_units(state.captured or 0, state.currency)
                fields["amount_captured"] = captured
                fields.update(self._payment_fields(pi, None))
                state.shipment_moved = ShipmentMoved(
                    lines=wanted, amount_captured=captured, payment_intent_id=pi
                )
            elif amount < to_minor_units(order.total, state.currency):
                rest = to_minor_units(order.total, state.currency) - amount
                key = f"order:{order_id}:unshipped:{pi}"
                refund = await steps.refund_payment(order_id, pi, amount=rest, key=key)
                ops_view.count("vult_refunds_total", "Refunds issued")
                self._watch(pi, key, "the share of the lines not shipped", refund)
                await self._read_charge(pi)
                fields.update(self._payment_fields(pi, refund))
                state.shipment_moved = ShipmentMoved(lines=wanted, payment_intent_id=pi)
        await self.change(
            S.Processing,
            S.Shipped,
            shipping_carrier=shipment.carrier.strip(),
            tracking_number=shipment.tracking_number.strip(),
            **fields,
            **({"shipped_lines": wanted} if wanted is not None else {"ship_all": True}),
        )
        state.pending_shipment = None
        state.shipment_moved = None

    async def _capture(self, pi: str, amount: int) -> None:
        """Capture `amount` of the authorization, as Stripe's amounts allow: nothing is
        shipped unpaid. Captured already (an earlier try whose answer was lost, by hand in
        the Dashboard): taken as it is. Nothing capturable (the authorization lapsed or
        was released): PaymentRefused."""
        state = self.state
        facts = state.charges.get(pi)
        if facts is None or state.pending_shipment is not None:  # a retry: Stripe again
            facts = await self._read_charge(pi)
        if facts.amount_captured <= 0:
            if facts.amount_capturable <= 0:
                raise ApplicationError(
                    f"Nothing of {pi} can be captured ({payments.payment_status(facts)} at "
                    "Stripe: the authorization lapsed or was released)",
                    type=Failure.PAYMENT_REFUSED,
                )
            await steps.capture_payment(self.order_id, pi, amount)
            facts = await self._read_charge(pi)
        elif payments.held(facts) > amount:
            # Captured outside the service above this shipment's share: the rest goes back,
            # as a release would have left it.
            key = f"order:{self.order_id}:above-share:{pi}"
            refund = await steps.refund_payment(
                self.order_id, pi, amount=payments.held(facts) - amount, key=key
            )
            ops_view.count("vult_refunds_total", "Refunds issued")
            self._watch(pi, key, "what was captured above the shipment's share", refund)
            facts = await self._read_charge(pi)
        state.captured = facts.amount_captured
        attention.clear_notice(state, self.index_for_search, "authorization")

    async def take_return(self, request: ReturnRequest) -> ReturnRecord:
        """Refund some shipped lines (their share, no shipping) or an amount, once per key,
        never more than Stripe says is still held."""
        state, order_id = self.state, self.order_id
        found = state.returns.get(request.key)
        if found is not None:
            if found.request is not None and found.request != request:
                raise refused("Idempotency-Key was used with a different return")
            return found
        payment = state.payment
        if payment is None:
            raise refused("The order has no payment to refund")
        pi = payment.payment_intent_id
        amounts, lines = fulfilment.of(await steps.read_order_lines(order_id))
        if request.line_items:
            wanted = {li.line_item_id: li.quantity for li in request.line_items}
            if problems := fulfilment.problems_with(lines, wanted, returning=True):
                raise refused("; ".join(problems))
            amount = fulfilment.returned_share(amounts, lines, wanted)
        else:
            assert request.amount is not None
            amount = request.amount
        assert state.currency is not None
        minor = to_minor_units(amount, state.currency)
        digest = hashlib.sha256(request.key.encode()).hexdigest()[:32]
        key = f"order:{order_id}:return:{digest}"
        facts = await self._read_charge(pi)
        # Made already under this key (its answer lost, or the row write after it failed):
        # that refund is the return, whatever is held now.
        refund = payments.our_refund(facts, key)
        if refund is None:
            if payments.refund_blocked(facts):
                raise refused(payments.refused_while_disputed(pi))
            if minor > payments.held(facts):
                held = from_minor_units(payments.held(facts), state.currency)
                raise refused(
                    f"The return of {amount} {state.currency} is more than is still held of "
                    f"the payment ({held} {state.currency}): nothing was refunded"
                )
            refund = await steps.refund_payment(order_id, pi, amount=minor, key=key)
            ops_view.count("vult_returns_total", "Returns refunded")
            self._watch(pi, key, f"the return {request.key!r}", refund)
            facts = _with_refund(facts, refund)
            state.charges[pi] = facts
        record = ReturnRecord(
            key=request.key,
            reason=request.reason.strip(),
            amount=from_minor_units(refund.amount, state.currency),
            line_items=request.line_items or [],
            refund_id=refund.refund_id,
            refund_status=refund.status,
            at=workflow.now(),
            request=request,
        )
        await steps.record_return(
            RecordReturn(
                order_id=order_id,
                record=record,
                at=workflow.now(),
                stripe_payment_status=payments.payment_status(facts),
                amount_refunded=self._major(facts.amount_refunded),
            )
        )
        state.returns[request.key] = record
        return record

    # ---- the authorization's clock (capture at shipment) -----------------------------------

    def _remind_of_authorization(self) -> None:
        self.state.authorization_reminded = True
        lapses = decisions.authorization_lapses(self.state, self.timing)
        if lapses is None:
            return
        then = "cancelled" if self.timing.on_authorization_expiry == "cancel" else "re-authorized"
        attention.notify(
            self.state,
            self.index_for_search,
            "authorization",
            f"The card authorization lapses at {lapses:%Y-%m-%d %H:%M} UTC: ship the order "
            f"before then, or it is {then}",
        )

    async def _authorization_lapsed(self) -> None:
        """Not shipped before the authorization lapsed: cancelled with the authorization
        released, or re-authorized with the same card, as ON_AUTHORIZATION_EXPIRY says. A
        re-authorization the card refuses cancels (an order in Processing, which cannot
        be cancelled, is parked for ops instead)."""
        state = self.state
        if decisions.authorization_lapses(state, self.timing) is None:
            return
        assert state.payment is not None
        attention.clear_notice(state, self.index_for_search, "authorization")
        pi = state.payment.payment_intent_id
        facts = await self._read_charge(pi)
        if facts.amount_captured > 0:
            # Captured outside the service (by hand in the Dashboard) before the lapse:
            # that is the order's capture; nothing is renewed, nothing released.
            state.captured = facts.amount_captured
            await self._annotate(
                amount_captured=self._major(facts.amount_captured),
                **self._payment_fields(pi, None),
            )
            return
        if self.timing.on_authorization_expiry == "reauthorize":
            try:
                await self._reauthorize()
                return
            except ApplicationError as err:
                if err.type != Failure.PAYMENT_REFUSED:
                    raise
                reason = f"authorization expired; re-authorization refused: {err.message}"
        else:
            reason = "authorization expired before shipment"
        state.authorization_over = True
        if state.status == S.Confirmed:
            await self.cancel(reason)
            return
        # Processing cannot be cancelled (the seed's table): released, and a notice until
        # ops settle it (the shipment is refused: nothing can be captured).
        await self._release(state.payment.payment_intent_id)
        attention.notify(
            state,
            self.index_for_search,
            "authorization",
            f"The order was not shipped before its card authorization lapsed ({reason}): "
            "nothing can be captured. Settle it with the customer, then resolve it",
        )

    async def _reauthorize(self) -> None:
        """A new authorization off-session with the lapsed one's card; it becomes the
        order's PaymentIntent, the old one is released."""
        state = self.state
        assert state.payment is not None and state.status is not None
        old = state.payment.payment_intent_id
        lapsed = await steps.retrieve_payment_intent(old)
        method = lapsed.payment_method
        if method is None:
            raise ApplicationError(
                "The lapsed authorization has no card to use again", type=Failure.PAYMENT_REFUSED
            )
        # The attempt counts as spent only once it is settled: a step of it tried again
        # after a park sends the same key, and Stripe answers with the same PaymentIntent
        # (never a second authorization on the customer's card).
        attempt = state.payment_attempt + 1
        intent = await self.create_payment_intent(
            attempt, payment_method=method, customer=lapsed.customer
        )
        if intent.payment_intent_id not in state.payment_intent_ids:
            state.payment_intent_ids.append(intent.payment_intent_id)
        state.renewal = intent.payment_intent_id
        found = await steps.retrieve_payment_intent(intent.payment_intent_id)
        state.renewal = None
        if found.status != "requires_capture":
            state.payment_attempt = attempt
            raise ApplicationError(
                f"The card did not authorize again ({found.status})", type=Failure.PAYMENT_REFUSED
            )
        await self._release(old)
        state.payment_attempt = attempt
        intent.client_secret = ""
        state.payment = intent
        state.authorized_at = workflow.now()
        state.authorization_ends_at = found.capture_before
        state.authorization_reminded = False
        await self._annotate(
            payment_intent_id=intent.payment_intent_id, stripe_payment_status="authorized"
        )

    async def _release(self, pi: str) -> PaymentIntentSnapshot:
        """Release an authorization that pays nothing, under a key of its own."""
        ask = self.state.release_asks
        self.state.release_asks += 1
        return await steps.ask_to_cancel(self.order_id, pi, ask, purpose="release")

    async def close_previous_attempt(self) -> None:
        """Cancel the last PaymentIntent at Stripe before a new attempt; if it was paid
        meanwhile, the order is confirmed by it instead."""
        payment = self.state.payment
        if payment is None:
            return
        pi = payment.payment_intent_id
        intent = await steps.cancel_payment_intent(self.order_id, pi, interactive=True)
        if intent.status == "processing":
            raise ApplicationError(
                "The last payment is still being processed; wait for its outcome",
                type=Failure.PAYMENT_UNAVAILABLE,
            )
        if intent.status == "succeeded":
            self.state.last_payment_note = await self._apply(intent)

    async def create_payment_intent(
        self, attempt: int, payment_method: str | None = None, customer: str | None = None
    ) -> PaymentIntentInfo:
        state, order_id = self.state, self.order_id
        assert state.total is not None and state.currency is not None
        assert state.order_number is not None
        request = CreatePaymentIntent(
            order_id=order_id,
            order_number=state.order_number,
            amount=to_minor_units(state.total, state.currency),
            currency=state.currency,
            # The same attempt always sends the same key, so a retry after a lost
            # response cannot create a second PaymentIntent at Stripe.
            idempotency_key=f"order:{order_id}:payment-intent:{attempt}",
            capture_method="manual"
            if self.capture == "at_shipment" or payment_method
            else "automatic",
            # Capture at shipment that re-authorizes a lapsed hold: the first payment keeps
            # the card for that authorization, which the customer is not there to give.
            save_card=self.capture == "at_shipment"
            and self.timing.on_authorization_expiry == "reauthorize"
            and payment_method is None,
            payment_method=payment_method,
            customer=customer,
        )
        summary = f"Create a PaymentIntent for {ops_view.money(state)} (attempt {attempt})"
        return await steps.create_payment_intent(request, summary)

    # ---- the one way the order row changes -------------------------------------------------

    async def change(
        self,
        current: OrderStatus,
        new: OrderStatus,
        **fields: str | Decimal | datetime | list[str] | None,
    ) -> None:
        if not can_transition(current, new):
            raise refused(f"Cannot change order status from {current} to {new}")
        await self._write(current, new, **fields)
        self.state.status = new
        ops_view.index(self.index_for_search, sa.ORDER_STATUS.value_set(new.value))
        if new == S.Confirmed:
            ops_view.count("vult_payments_succeeded_total", "Payments that confirmed an order")
        elif new == S.Failed:
            ops_view.count("vult_payments_failed_total", "Payment attempts that failed")
        if new != S.PaymentProcessing and self.state.payment is not None:
            # Only a paying customer needs the client secret; keep it no longer than that.
            self.state.payment.client_secret = ""

    async def _annotate(self, **fields: str | Decimal | datetime | list[str] | None) -> None:
        """Record Stripe details on the row without a transition."""
        status = self.state.status
        assert status is not None
        await self._write(status, status, **fields)

    async def _write(
        self,
        current: OrderStatus,
        new: OrderStatus,
        **fields: str | Decimal | datetime | list[str] | None,
    ) -> None:
        change = StatusChange(
            order_id=self.order_id, expected=[current], new_status=new, at=workflow.now()
        )
        await steps.write_status(change.model_copy(update=fields))


def _with_refund(facts: ChargeFacts, refund: RefundInfo) -> ChargeFacts:
    """The amounts once `refund` (just made) is counted."""
    live = refund.status not in payments.DEAD_REFUND
    return facts.model_copy(
        update={
            "amount_refunded": facts.amount_refunded + (refund.amount if live else 0),
            "refunds": [refund, *facts.refunds],
        }
    )


def _refund_status(refund: RefundInfo) -> str:
    return "refunded" if refund.status == "succeeded" else f"refund_{refund.status}"
