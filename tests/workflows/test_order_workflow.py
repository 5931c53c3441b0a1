"""OrderWorkflow decisions (CreatePaymentHandlerTests, HandleWebhookHandlerTests of spec 8.1):
every path of placement, payment and Stripe events, including duplicate and stale events."""

from __future__ import annotations

import re
import uuid

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.support.workflows import DECLINED, Harness, event, eventually
from vult.domain.failures import Failure
from vult.domain.status import OrderStatus
from workflows.order import OrderWorkflow

S = OrderStatus


async def test_placing_an_order_answers_with_its_number_once_the_row_exists(
    harness: Harness,
) -> None:
    placed, handle = await harness.place()
    assert placed.status == S.Pending
    assert re.fullmatch(r"VLT-\d{8}-\d{6}", placed.order_number)
    assert harness.backend.rows[placed.order_id] == S.Pending
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Pending


async def test_an_order_for_an_unknown_product_is_refused_with_the_reason(
    harness: Harness,
) -> None:
    unknown = uuid.uuid4()
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await harness.place(product=unknown)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Failure.INVALID_ORDER
    assert cause.details[0] == [f"Product not found: {unknown}"]
    assert harness.backend.rows == {}


async def test_paying_creates_one_payment_intent_and_asking_again_returns_it(
    harness: Harness,
) -> None:
    placed, handle = await harness.place()
    first = await handle.execute_update(OrderWorkflow.request_payment)
    again = await handle.execute_update(OrderWorkflow.request_payment)
    assert again == first
    assert first.amount == 10800 and first.currency == "usd"
    assert harness.backend.create_calls == 1
    assert harness.backend.rows[placed.order_id] == S.PaymentProcessing
    assert list(harness.backend.keys) == [f"order:{placed.order_id}:payment-intent:1"]


async def test_a_successful_payment_confirms_the_order(harness: Harness) -> None:
    await harness.paid()
    assert harness.backend.changes == [
        (S.Pending, S.PaymentProcessing),
        (S.PaymentProcessing, S.Confirmed),
    ]


async def test_a_duplicate_event_is_handled_once(harness: Harness) -> None:
    _, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    harness.backend.intents[intent.payment_intent_id].status = "succeeded"
    duplicate = event(intent.payment_intent_id, eid="evt_same")
    for _ in range(3):
        await handle.signal(OrderWorkflow.payment_event, duplicate)
    await eventually(handle, lambda s: s.status == S.Confirmed)
    await handle.signal(OrderWorkflow.payment_event, duplicate)
    state = await eventually(handle, lambda s: "evt_same" in s.seen_event_ids)
    assert state.seen_event_ids.count("evt_same") == 1
    assert harness.backend.retrieve_calls == 1


async def test_a_declined_card_fails_the_order_with_stripes_message(harness: Harness) -> None:
    placed, _, _ = await harness.paid(succeeded=False)
    assert harness.backend.rows[placed.order_id] == S.Failed
    assert harness.backend.fields[placed.order_id]["payment_error_message"] == DECLINED


async def test_paying_again_after_a_decline_uses_a_new_payment_intent_and_key(
    harness: Harness,
) -> None:
    placed, handle, first = await harness.paid(succeeded=False)
    second = await handle.execute_update(OrderWorkflow.request_payment)
    assert second.payment_intent_id != first.payment_intent_id
    assert f"order:{placed.order_id}:payment-intent:2" in harness.backend.keys
    await harness.settle(handle, second.payment_intent_id, succeeded=True)


async def test_a_late_success_on_a_superseded_intent_is_refunded_once_and_changes_nothing(
    harness: Harness,
) -> None:
    placed, handle, first = await harness.paid(succeeded=False)
    await handle.execute_update(OrderWorkflow.request_payment)

    # The customer paid the first PaymentIntent on an old tab after all.
    harness.backend.intents[first.payment_intent_id].status = "succeeded"
    for _ in range(2):
        await handle.signal(OrderWorkflow.payment_event, event(first.payment_intent_id))
    state = await eventually(
        handle,
        lambda s: len(s.seen_event_ids) == 3 and "already refunded" in (s.payments.last_note or ""),
    )
    assert state.status == S.PaymentProcessing
    assert harness.backend.refunds == {
        f"order:{placed.order_id}:refund:{first.payment_intent_id}": first.payment_intent_id
    }


async def test_a_late_success_on_the_current_intent_confirms_a_failed_order(
    harness: Harness,
) -> None:
    _, handle, intent = await harness.paid(succeeded=False)
    # The customer retried the card on the same checkout page.
    await harness.settle(handle, intent.payment_intent_id, succeeded=True)
    assert harness.backend.changes[-2:] == [
        (S.Failed, S.PaymentProcessing),
        (S.PaymentProcessing, S.Confirmed),
    ]


async def test_a_failure_event_arriving_after_success_never_moves_the_order_back(
    harness: Harness,
) -> None:
    _, handle, intent = await harness.paid()
    await handle.signal(
        OrderWorkflow.payment_event,
        event(intent.payment_intent_id, "payment_intent.payment_failed"),
    )
    state = await eventually(
        handle,
        lambda s: (
            harness.backend.retrieve_calls == 2
            and "already Confirmed" in (s.payments.last_note or "")
        ),
    )
    assert state.status == S.Confirmed
    assert harness.backend.changes[-1] == (S.PaymentProcessing, S.Confirmed)


async def test_an_event_for_a_payment_intent_that_is_not_the_orders_is_ignored(
    harness: Harness,
) -> None:
    _, handle = await harness.place()
    await handle.execute_update(OrderWorkflow.request_payment)
    await handle.signal(OrderWorkflow.payment_event, event("pi_someone_else"))
    state = await eventually(handle, lambda s: s.payments.last_note is not None)
    assert "not one of this order's PaymentIntents" in (state.payments.last_note or "")
    assert state.status == S.PaymentProcessing
    assert harness.backend.retrieve_calls == 0


async def test_a_charge_for_the_wrong_amount_is_refunded_and_fails_the_attempt(
    harness: Harness,
) -> None:
    placed, handle = await harness.place()
    intent = await handle.execute_update(OrderWorkflow.request_payment)
    pi = harness.backend.intents[intent.payment_intent_id]
    pi.status, pi.amount = "succeeded", 100
    await handle.signal(OrderWorkflow.payment_event, event(pi.id))
    state = await eventually(handle, lambda s: s.status == S.Failed)
    assert "refunding, not confirming" in (state.payments.last_note or "")
    assert list(harness.backend.refunds.values()) == [pi.id]
    assert harness.backend.fields[placed.order_id]["payment_error_message"] == (
        "The payment did not match the order total"
    )


async def test_payment_is_refused_for_a_confirmed_order(harness: Harness) -> None:
    _, handle, _ = await harness.paid()
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(OrderWorkflow.request_payment)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Failure.INVALID_TRANSITION
    assert str(cause.message) == "Cannot process payment for order with status: Confirmed"
    assert harness.backend.create_calls == 1


async def test_a_payment_stripe_refuses_reports_stripes_reason_and_changes_nothing(
    harness: Harness,
) -> None:
    placed, handle = await harness.place()
    harness.backend.refuse_payment = "Amount must be at least $0.50 usd"
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(OrderWorkflow.request_payment)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Failure.PAYMENT_REFUSED
    assert cause.message == "Amount must be at least $0.50 usd"
    assert harness.backend.rows[placed.order_id] == S.Pending
    state = await handle.query(OrderWorkflow.state)
    assert state.status == S.Pending and state.payments.attempt == 0
