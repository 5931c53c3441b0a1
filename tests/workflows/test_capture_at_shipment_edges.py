"""Capture at shipment at its edges, found by an adversarial review of the money paths: the
real OrderWorkflow on the dev server, its activities the stand-ins of
tests/support/workflows.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowHandle

from tests.support.workflows import STAND_IN_TOTAL, FakeStripeIntent, Harness, event, eventually
from vult.domain.contracts import (
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
    PaymentIntentInfo,
    Payments,
    ResumedRun,
    ShipOrder,
)
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow, workflow_id_for

S = OrderStatus
AMOUNT = 10800


def short_clock(expiry: str) -> OrderTiming:
    return OrderTiming(
        authorization_validity=timedelta(seconds=4),
        authorization_reminder=timedelta(seconds=2),
        on_authorization_expiry=expiry,
        return_window=timedelta(seconds=2),
        attention_retry=timedelta(seconds=2),
    )


async def authorized(harness: Harness) -> tuple[WorkflowHandle[OrderWorkflow, OrderState], str]:
    """Placed in at_shipment mode, paid: the card authorized (`requires_capture`)."""
    _, handle = await harness.place(capture="at_shipment")
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    harness.backend.intents[pi].status = "requires_capture"
    await handle.signal(
        OrderWorkflow.payment_event, event(pi, "payment_intent.amount_capturable_updated")
    )
    await eventually(handle, lambda s: s.status == S.Confirmed)
    return handle, pi


def captured_in_total(harness: Harness) -> int:
    return sum(
        (i.captured if i.captured is not None else i.amount)
        for i in harness.backend.intents.values()
        if i.status == "succeeded"
    )


# FINDING 4: ops capture the authorization by hand in the Dashboard before it lapses (the
# design expects it: `_capture` takes "captured by hand in the Dashboard" as it is). Stripe
# sends payment_intent.succeeded; the order is Confirmed, so `_apply` does NOTHING and
# state.captured stays None. At the lapse, `_reauthorize` reads the old PaymentIntent, never
# looks at its status (succeeded), places a SECOND authorization on the saved card, tries to
# cancel the captured one (refused, answer ignored), and makes the new one the order's
# payment: shipping captures it. The customer pays twice.
async def test_a_payment_captured_in_the_dashboard_before_the_lapse_is_not_authorized_and_captured_again(  # noqa: E501
    harness: Harness,
) -> None:
    harness.timing = short_clock("reauthorize")
    handle, old = await authorized(harness)
    # Captured by hand in the Dashboard, in full; Stripe tells the service.
    harness.backend.intents[old].status = "succeeded"
    harness.backend.intents[old].captured = AMOUNT
    await handle.signal(OrderWorkflow.payment_event, event(old, "payment_intent.succeeded"))
    await asyncio.sleep(7)  # past the authorization's lapse (4 s)
    state = await handle.query(OrderWorkflow.state)
    renewed = [pi for pi in harness.backend.intents if pi != old]
    if state.status == S.Confirmed:
        await handle.execute_update(OrderWorkflow.start_processing)
        await handle.execute_update(
            OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1")
        )
    assert captured_in_total(harness) == AMOUNT, (
        f"the customer was charged {captured_in_total(harness)} for an order of {AMOUNT}"
    )
    assert renewed == [], f"a second authorization was placed on the card: {renewed}"


async def resumed_at_shipment(
    harness: Harness, pis: list[tuple[str, str]]
) -> WorkflowHandle[OrderWorkflow, OrderState]:
    """A Confirmed capture-at-shipment order whose workflow was terminated; resumed from
    its row as activities/order_resume.py builds the state (no authorized_at, no captured)."""
    order_id = uuid.uuid4()
    backend = harness.backend
    backend.rows[order_id] = S.Confirmed
    for pi, stripe_status in pis:
        backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), stripe_status)
    now = datetime.now(UTC)
    current = pis[-1][0]
    state = OrderState(
        status=S.Confirmed,
        order_number="VLT-20260101-000002",
        total=STAND_IN_TOTAL,
        currency="USD",
        created_at=now - timedelta(days=8),
        resumes=[ResumedRun(at=now, previous="TERMINATED")],
        catching_up=True,
        payments=Payments(
            attempt=len(pis),
            current=PaymentIntentInfo(
                payment_intent_id=current, client_secret="", amount=AMOUNT, currency="usd"
            ),
            intent_ids=[pi for pi, _ in pis],
            next_reconcile_at=now + timedelta(minutes=15),
        ),
    )
    return await harness.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(
            order_id=order_id, timing=harness.timing, state=state, capture="at_shipment"
        ),
        id=workflow_id_for(order_id),
        task_queue=harness.task_queue,
    )


# FINDING 5 (pre-existing path, reached more often now that renewals really run): a capture-at-
# shipment order whose workflow is resumed after its authorization lapsed at Stripe (Stripe
# cancelled the uncaptured PaymentIntent; or a renewal was made but the run ended before the
# row named it, so the row's PaymentIntent is the released one) catches up with authorized_at
# None (set only for `requires_capture`). Nothing then counts as an authorization: ops start
# processing and ship, `ship` captures nothing (`self.authorized()` is False) and
# stripe_keeps_payment passes (it only refuses captured-then-refunded money). Shipped unpaid.
async def test_a_resumed_order_whose_authorization_lapsed_is_not_shipped_unpaid(
    harness: Harness,
) -> None:
    handle = await resumed_at_shipment(harness, [("pi_lapsed_1", "canceled")])
    await eventually(handle, lambda s: not s.catching_up)
    shipped = True
    try:
        await handle.execute_update(OrderWorkflow.start_processing)
        await handle.execute_update(
            OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1")
        )
    except Exception:  # noqa: BLE001 - refused: the order is not shipped
        shipped = False
    state = await handle.query(OrderWorkflow.state)
    assert not (shipped and state.status == S.Shipped and captured_in_total(harness) == 0), (
        "the order was shipped with nothing captured at Stripe"
    )


# FINDING 6: a renewal interrupted half-way (made at Stripe, appended to
# payment_intent_ids, then the read-back fails and the step parks) is not yet the order's
# PaymentIntent. Stripe's own event for it (payment_intent.amount_capturable_updated, sent on
# every authorization) then reaches `_apply`, which sees an authorization that is "not
# current" and RELEASES it (Act.CANCEL). The parked renewal, tried again, finds that same
# PaymentIntent by its key (`_made_for`) now canceled: refused, and the order is cancelled
# although the card authorized fine.
async def test_the_event_of_a_renewal_in_progress_does_not_release_that_renewal(
    harness: Harness,
) -> None:
    harness.timing = short_clock("reauthorize")
    handle, old = await authorized(harness)
    harness.backend.failing_retrieves.append("pi_2")  # the renewal's read-back fails
    await eventually(handle, lambda s: "pi_2" in s.payments.intent_ids, timeout=15)
    await handle.signal(
        OrderWorkflow.payment_event, event("pi_2", "payment_intent.amount_capturable_updated")
    )
    await asyncio.sleep(1.0)
    released = [k for k in harness.backend.cancel_answers if ":cancel:pi_2" in k]
    assert released == [], f"the renewal in progress was released at Stripe: {released}"
