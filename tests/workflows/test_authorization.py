"""Capture at shipment in the workflow: an authorized payment confirms the order with
nothing captured; the authorization's clock reminds ops a day before it lapses and then
cancels the order (the authorization released) or re-authorizes it, as the setting says;
shipping captures the shipped share."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowHandle

from tests.support.workflows import Harness, event, eventually
from vult.domain.contracts import OrderState, OrderTiming, ShipOrder
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow

S = OrderStatus


async def authorized(harness: Harness) -> tuple[WorkflowHandle[OrderWorkflow, OrderState], str]:
    """Placed in at_shipment mode, paid: the card authorized (`requires_capture`)."""
    _, handle = await harness.place(capture="at_shipment")
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = intent.payment_intent_id
    assert harness.backend.capture_methods[pi] == "manual"
    harness.backend.intents[pi].status = "requires_capture"
    await handle.signal(
        OrderWorkflow.payment_event,
        event(pi, "payment_intent.amount_capturable_updated"),
    )
    state = await eventually(handle, lambda s: s.status == S.Confirmed)
    assert state.hold.authorized_at is not None and state.hold.captured is None
    return handle, pi


def short_clock(harness: Harness, expiry: str) -> None:
    harness.timing = OrderTiming(
        authorization_validity=timedelta(seconds=4),
        authorization_reminder=timedelta(seconds=2),
        on_authorization_expiry=expiry,
        return_window=timedelta(seconds=2),
        attention_retry=timedelta(seconds=2),
    )


async def test_an_authorized_order_not_shipped_is_reminded_then_cancelled_and_released(
    harness: Harness,
) -> None:
    short_clock(harness, "cancel")
    handle, pi = await authorized(harness)
    state = await eventually(handle, lambda s: "authorization" in s.ops.notices, timeout=10)
    assert "lapses at" in state.ops.notices["authorization"]
    state = await eventually(handle, lambda s: s.status == S.Cancelled, timeout=15)
    assert state.cancelling.reason == "authorization expired before shipment"
    assert "authorization" not in state.ops.notices
    assert harness.backend.intents[pi].status == "canceled"  # released
    assert harness.backend.refund_calls == 0


async def test_a_lapsed_authorization_is_renewed_with_the_same_card_when_the_setting_says(
    harness: Harness,
) -> None:
    short_clock(harness, "reauthorize")
    handle, old = await authorized(harness)
    state = await eventually(
        handle,
        lambda s: s.payments.current is not None and s.payments.current.payment_intent_id != old,
        timeout=15,
    )
    new = state.payments.current.payment_intent_id if state.payments.current else ""
    assert state.status == S.Confirmed and harness.backend.intents[old].status == "canceled"
    assert harness.backend.intents[new].status == "requires_capture"
    assert harness.backend.intents[new].payment_method == "pm_card_visa"
    # Shipping captures the renewed authorization, in full.
    await handle.execute_update(OrderWorkflow.start_processing)
    await handle.execute_update(OrderWorkflow.ship, ShipOrder(carrier="UPS", tracking_number="1"))
    assert harness.backend.intents[new].captured == harness.backend.intents[new].amount
    assert harness.backend.refund_calls == 0


async def test_a_renewal_the_card_refuses_cancels_the_order(harness: Harness) -> None:
    short_clock(harness, "reauthorize")
    harness.backend.reauthorization = "requires_payment_method"
    handle, old = await authorized(harness)
    state = await eventually(handle, lambda s: s.status == S.Cancelled, timeout=15)
    assert "re-authorization refused" in (state.cancelling.reason or "")
    assert harness.backend.intents[old].status == "canceled"


async def test_a_renewal_interrupted_half_way_makes_no_second_authorization(
    harness: Harness,
) -> None:
    """The new authorization was made, then reading it back failed past its retries (the
    step parks): tried again, it sends the same key and gets the same PaymentIntent."""
    short_clock(harness, "reauthorize")
    handle, old = await authorized(harness)
    harness.backend.failing_retrieves.append("pi_2")  # the renewal's, when it is read back
    state = await eventually(
        handle,
        lambda s: s.payments.current is not None and s.payments.current.payment_intent_id != old,
        timeout=20,
    )
    assert state.payments.current is not None and state.payments.current.payment_intent_id == "pi_2"
    assert sorted(harness.backend.intents) == [old, "pi_2"]  # one renewal, not two
    assert state.status == S.Confirmed and state.ops.attention is None
