"""The chaos suite's audit finds each kind of violation it names: a record set made by hand
for each, against one that is sound."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from dev.chaos import event_audit
from dev.chaos.audit import (
    OWNER,
    Invariant,
    Records,
    Workflow,
    audit,
    disagreeing,
    redeliveries_acknowledged,
)
from dev.chaos.event_audit import Told, figures
from dev.chaos.shoppers import Journey
from dev.inbox.local_receiver import LOCAL_RECEIVER
from vult.domain.order_events import OrderEventType, event_id
from vult.domain.payments import OWNER_KEY, REFUND_KEY

ORDER = "0b4f6d1e-0000-4000-8000-000000000001"
SHIPPED = "captured = shipped share, refunded = returned (+ unshipped)"
TWICE = "no PaymentIntent refunded twice by the service (each refund key once; one cancel refund)"
BAD_END = "no workflow failed, timed out, terminated or cancelled (but by the terminate fault)"


def sound() -> tuple[list[Journey], Records]:
    """One journey, paid and Confirmed; a second charge refunded once, in full; another
    system's payment left alone. The order told it was placed and paid: each event's
    webhook tried once and answered, the paid one mailed once."""
    journey = Journey(number=0, path="pay", key="k0", email="c0@example.com")
    journey.order_ids.add(ORDER)
    journey.finished = True
    records = Records(
        orders={
            ORDER: {
                "id": ORDER,
                "status": "Confirmed",
                "email": "c0@example.com",
                "total": Decimal("12.34"),
                "pi": "pi_kept",
                "amount_refunded": None,
                "dispute_status": None,
                "stripe_payment_status": "succeeded",
                "resolution_note": None,
            }
        },
        workflows={
            ORDER: Workflow(
                exists=True, status="Confirmed", search_status="Confirmed", running=True
            )
        },
        bad_endings=[],
        intents={
            "pi_kept": _intent("pi_kept", 1234),
            "pi_extra": _intent("pi_extra", 1234),
            "pi_theirs": {"id": "pi_theirs", "status": "succeeded", "amount": 500, "metadata": {}},
        },
        refunds={"pi_extra": [_refund("re_1", 1234)]},
        told=Told(events=[], deliveries=[], tries=[], mails=[]),
    )
    told(records, OrderEventType.PLACED)
    told(records, OrderEventType.PAID, mail=True)
    other = Journey(number=1, path="other-systems-payments", key="k1", email="c1@example.com")
    other.finished = True
    other.foreign["pi_theirs"] = "succeeded"
    return [journey, other], records


def eid(kind: OrderEventType, fact: str = "") -> str:
    return event_id(uuid.UUID(ORDER), kind, fact)


def told(
    r: Records, kind: OrderEventType, fact: str = "", *, mail: bool = False, tries: int = 1
) -> str:
    """The order told `kind` (the fact `fact`): its event, its webhook delivered after
    `tries` tries (the last answered), and its mail when `mail`."""
    assert r.told is not None
    event = eid(kind, fact)
    r.told.events.append(
        {
            "id": event,
            "order_id": ORDER,
            "type": kind.value,
            "body_id": event,
            "body_order": ORDER,
        }
    )
    r.told.deliveries.append(_delivery(event, LOCAL_RECEIVER, tries))
    for n in range(tries):
        r.told.tries.append(_try(event, kind, status=204 if n == tries - 1 else 503))
    if mail:
        r.told.deliveries.append(_delivery(event, "email", 1))
        r.told.mails.append(_mail(f"<{event}@vult.localhost>"))
    return event


def untold(r: Records, event: str) -> None:
    """As if the order had never told `event`: no event, no delivery, nothing received."""
    assert r.told is not None
    t = r.told
    t.events = [e for e in t.events if e["id"] != event]
    t.deliveries = [d for d in t.deliveries if d["event_id"] != event]
    t.tries = [x for x in t.tries if json.loads(x["body"])["id"] != event]
    t.mails = [m for m in t.mails if event not in m["messageId"]]


def _delivery(event: str, target: str, attempts: int, state: str = "delivered") -> dict[str, Any]:
    return {
        "event_id": event,
        "target": target,
        "state": state,
        "attempts": attempts,
        "runs": 1,
        "answer": "204 No Content",
    }


def _try(
    event: str,
    kind: OrderEventType,
    *,
    status: int = 204,
    webhook_id: str | None = None,
    verified: bool = True,
    delay: float = 0.0,
) -> dict[str, Any]:
    """One request the inbox's receiver kept."""
    body: dict[str, Any] = {"id": event, "type": kind.value, "orderId": ORDER, "data": {}}
    return {
        "n": 1,
        "endpoint": LOCAL_RECEIVER,
        "webhookId": event if webhook_id is None else webhook_id,
        "type": kind.value,
        "orderId": ORDER,
        "verified": verified,
        "error": None if verified else "No matching signature found",
        "status": status,
        "delaySeconds": delay,
        "body": json.dumps(body),
    }


def _mail(message_id: str, to: str = "c0@example.com") -> dict[str, Any]:
    return {"n": 1, "messageId": message_id, "to": [to], "subject": "Your order"}


def _refund(
    refund_id: str, amount: int, ours: bool = True, key: str | None = None
) -> dict[str, Any]:
    metadata = {REFUND_KEY: key or f"order:{ORDER}:refund:x"} if ours else {}
    return {"id": refund_id, "amount": amount, "status": "succeeded", "metadata": metadata}


def _intent(pi: str, amount: int, status: str = "succeeded") -> dict[str, Any]:
    metadata = {"order_id": ORDER, OWNER_KEY: OWNER}
    return {"id": pi, "status": status, "amount": amount, "metadata": metadata}


def failed(invariants: list[Invariant]) -> dict[str, list[str]]:
    return {i.name: i.violations for i in invariants if i.violations}


def test_a_sound_run_passes_every_invariant() -> None:
    journeys, records = sound()
    invariants = audit(journeys, records)
    assert failed(invariants) == {}
    # Everything applied to this run was checked (no order here is unpaid, disputed or
    # shipped).
    unchecked = [i.name for i in invariants if not i.checked]
    assert unchecked == [
        "not Confirmed or later: no payment kept",
        SHIPPED,
        "no refund asked for a disputed charge",
    ]


def shipped_part(r: Records, *, manual: bool, captured: int, unshipped: int, returned: int) -> None:
    """The order shipped one of its two lines (1000 + 1000 merchandise, 234 tax: the
    shipped line's share is 1000 + 117 = 1117 cents) and returned `returned` cents of it."""
    order = r.orders[ORDER]
    order.update(
        status="Delivered",
        sub_total=Decimal("20.00"),
        tax=Decimal("2.34"),
        shipping_cost=Decimal("0.00"),
        total=Decimal("22.34"),
        returned=Decimal(returned) / 100,
        lines=[
            {"line": "a", "unit_price": Decimal("10.00"), "quantity": 1, "quantity_shipped": 1},
            {"line": "b", "unit_price": Decimal("10.00"), "quantity": 1, "quantity_shipped": 0},
        ],
    )
    r.workflows[ORDER] = Workflow(
        exists=True, status="Delivered", search_status="Delivered", running=True
    )
    pi = r.intents["pi_kept"]
    pi.update(
        amount=2234, amount_received=captured, capture_method="manual" if manual else "automatic"
    )
    refunds = []
    if unshipped:
        refunds.append(_refund("re_u", unshipped, key=f"order:{ORDER}:unshipped:pi_kept"))
    if returned:
        refunds.append(_refund("re_r", returned, key=f"order:{ORDER}:return:k1"))
    r.refunds["pi_kept"] = refunds
    order["amount_refunded"] = Decimal(unshipped + returned) / 100
    # What it told: authorized (captured at shipment) or paid, shipped, delivered, each
    # refund, the return.
    order["return_keys"] = ["k1"] if returned else []
    if manual:
        untold(r, eid(OrderEventType.PAID))
        told(r, OrderEventType.AUTHORIZED, mail=True)
    told(r, OrderEventType.SHIPPED, mail=True)
    told(r, OrderEventType.DELIVERED)
    for refund in refunds:
        told(r, OrderEventType.REFUNDED, refund["id"], mail=True)
    if returned:
        told(r, OrderEventType.RETURNED, "k1", mail=True)


def test_a_part_shipped_and_returned_is_sound_in_both_capture_modes() -> None:
    for manual, captured, unshipped in ((True, 1117, 0), (False, 2234, 1117)):
        journeys, records = sound()
        shipped_part(records, manual=manual, captured=captured, unshipped=unshipped, returned=500)
        journeys[0].path = "ship-part-return-part"
        assert failed(audit(journeys, records)) == {}


def test_a_capture_beyond_the_shipped_share_or_a_return_not_refunded_is_found() -> None:
    journeys, records = sound()
    shipped_part(records, manual=True, captured=2234, unshipped=0, returned=0)
    assert SHIPPED in failed(audit(journeys, records))
    journeys, records = sound()
    shipped_part(records, manual=False, captured=2234, unshipped=1117, returned=500)
    records.refunds["pi_kept"].pop()  # the return recorded, its refund missing
    assert SHIPPED in failed(audit(journeys, records))


def _refunded_twice(j: list[Journey], r: Records) -> None:
    r.refunds["pi_extra"].append(_refund("re_2", 1234))


def _refunded_beyond_the_charge(j: list[Journey], r: Records) -> None:
    r.refunds["pi_extra"].append(_refund("re_2", 10, ours=False))  # a Dashboard one besides


def _partly_refunded_only(j: list[Journey], r: Records) -> None:
    r.refunds["pi_extra"] = [_refund("re_d", 234, ours=False), _refund("re_1", 900)]


def _theirs_refunded(j: list[Journey], r: Records) -> None:
    r.any_refunds["pi_theirs"] = 1


def _theirs_cancelled(j: list[Journey], r: Records) -> None:
    r.intents["pi_theirs"]["status"] = "canceled"


def _disputed_and_refunded(j: list[Journey], r: Records) -> None:
    r.disputes["pi_extra"] = {"id": "dp_1", "status": "needs_response", "amount": 1234}


def _row_misses_a_dashboard_refund(j: list[Journey], r: Records) -> None:
    r.refunds["pi_kept"] = [_refund("re_d", 100, ours=False)]


def _second_payment_kept(j: list[Journey], r: Records) -> None:
    r.refunds.pop("pi_extra")


def _cancelled_but_charged(j: list[Journey], r: Records) -> None:
    r.orders[ORDER]["status"] = "Cancelled"
    r.workflows[ORDER] = Workflow(exists=True, status="Cancelled", search_status="Cancelled")
    j[0].finished = False
    j[0].gave_up = "stopped"


def _stuck_paying(j: list[Journey], r: Records) -> None:
    r.orders[ORDER]["status"] = "PaymentProcessing"


def _two_orders_for_one_key(j: list[Journey], r: Records) -> None:
    j[0].order_ids.add("0b4f6d1e-0000-4000-8000-000000000002")


def _lost_order(j: list[Journey], r: Records) -> None:
    del r.orders[ORDER]


def _workflow_disagrees(j: list[Journey], r: Records) -> None:
    r.workflows[ORDER].search_status = "PaymentProcessing"


def _no_workflow(j: list[Journey], r: Records) -> None:
    r.workflows[ORDER] = Workflow(exists=False)


def _failing_task(j: list[Journey], r: Records) -> None:
    r.workflows[ORDER].failing_task = "5 attempts"


def _parked(j: list[Journey], r: Records) -> None:
    r.workflows[ORDER].needs_attention = True


def _failed_workflow(j: list[Journey], r: Records) -> None:
    r.bad_endings.append(("late-payment-pi_x", "run-1"))


def _terminated_not_by_the_fault(j: list[Journey], r: Records) -> None:
    r.terminated.add((f"order-{ORDER}", "run-0"))  # the fault's: not a violation
    r.bad_endings += [(f"order-{ORDER}", "run-0"), (f"order-{ORDER}", "run-1")]


def _terminated_and_not_resumed(j: list[Journey], r: Records) -> None:
    r.workflows[ORDER].running = False


def _server_error(j: list[Journey], r: Records) -> None:
    j[0].server_errors.append("POST /api/orders: 500")


def _wrong_amount(j: list[Journey], r: Records) -> None:
    r.intents["pi_kept"]["amount"] = 999


@pytest.mark.parametrize(
    ("spoil", "invariant"),
    [
        (_refunded_twice, TWICE),
        (_refunded_beyond_the_charge, "refunds never exceed a charge"),
        (
            _partly_refunded_only,
            "every charge not kept went back in full: refunds (anyone's) + a lost dispute",
        ),
        (_theirs_refunded, "no PaymentIntent of another system touched"),
        (_theirs_cancelled, "no PaymentIntent of another system touched"),
        (_disputed_and_refunded, "no refund asked for a disputed charge"),
        (_row_misses_a_dashboard_refund, "the order's refunded amount and dispute = Stripe's"),
        (_second_payment_kept, "Confirmed or later: exactly the PaymentIntent it names is kept"),
        (_cancelled_but_charged, "not Confirmed or later: no payment kept"),
        (_stuck_paying, "nothing left in PaymentProcessing"),
        (_two_orders_for_one_key, "one order per Idempotency-Key"),
        (_lost_order, "every order a 201 named is in PostgreSQL"),
        (_workflow_disagrees, "database status = workflow status = OrderStatus search attribute"),
        (_no_workflow, "every order has its workflow"),
        (_failing_task, "no workflow with a failing workflow task"),
        (_parked, "no order left needing attention"),
        (_failed_workflow, BAD_END),
        (_terminated_not_by_the_fault, BAD_END),
        (_terminated_and_not_resumed, "every order that can still change has a running workflow"),
        (_server_error, "no server error (5xx other than 503)"),
        (_wrong_amount, "Confirmed or later: exactly the PaymentIntent it names is kept"),
    ],
)
def test_each_violation_is_found(spoil: Any, invariant: str) -> None:
    journeys, records = sound()
    spoil(journeys, records)
    assert invariant in failed(audit(journeys, records))


def test_a_run_the_terminate_fault_ended_is_no_violation_once_resumed() -> None:
    journeys, records = sound()
    records.terminated.add((f"order-{ORDER}", "run-0"))
    records.bad_endings.append((f"order-{ORDER}", "run-0"))
    assert not failed(audit(journeys, records))


def test_a_run_the_terminate_fault_ended_mid_write_may_lag_its_row() -> None:
    """Terminated after its write landed and before its task was recorded: the run says
    PaymentProcessing, the row Cancelled. The row is the order then (settled, so not
    resumed): no violation. The same lag in a running workflow, or in a run ended by
    anything else, is one."""
    journeys, records = sound()
    records.orders[ORDER]["status"] = "Cancelled"
    records.orders[ORDER]["stripe_payment_status"] = "canceled"
    records.intents["pi_kept"]["status"] = "canceled"
    lagging = Workflow(
        exists=True, status="PaymentProcessing", search_status="PaymentProcessing", run_id="r1"
    )
    records.workflows[ORDER] = lagging
    agree = "database status = workflow status = OrderStatus search attribute"
    assert agree in failed(audit(journeys, records))  # ended, not by the fault
    records.terminated.add((f"order-{ORDER}", "r1"))
    records.bad_endings.append((f"order-{ORDER}", "r1"))
    assert agree not in failed(audit(journeys, records))
    lagging.running = True  # the same run still running: it must catch up first
    assert agree in failed(audit(journeys, records))


def test_settling_waits_for_a_running_workflow_to_say_what_its_row_says() -> None:
    _, records = sound()
    assert disagreeing(records.orders, records.workflows) == []
    records.workflows[ORDER].status = "PaymentProcessing"  # its lost task not run again yet
    assert disagreeing(records.orders, records.workflows) == [ORDER]
    records.workflows[ORDER].running = False  # ended: settling cannot wait for it
    assert disagreeing(records.orders, records.workflows) == []


def test_an_event_delivered_again_that_was_not_acknowledged_is_found() -> None:
    fine = redeliveries_acknowledged({"200": 30})
    assert fine.checked == 30 and not fine.violations
    refused = redeliveries_acknowledged({"200": 30, "400": 2, "unanswered": 1})
    assert refused.checked == 33
    assert refused.violations == ["2 answered 400", "1 answered unanswered"]


def test_an_order_left_needing_attention_is_reported_with_its_journey_and_why() -> None:
    """Issue 29, item 10: the report says which journey, the order's status, the reason it
    was parked and the last thing its workflow did, so it can be followed up from the
    report alone."""
    journeys, records = sound()
    wf = records.workflows[ORDER]
    wf.needs_attention = True
    wf.attention = "the cancellation failed: StatusRefused"
    wf.last = "pi_kept succeeded: order confirmed"
    (violation,) = failed(audit(journeys, records))["no order left needing attention"]
    j = journeys[0]
    assert f"journey {j.number} ({j.path})" in violation and "(Confirmed)" in violation
    assert "attention: the cancellation failed: StatusRefused" in violation
    assert "last: pi_kept succeeded: order confirmed" in violation


# ---- The order events ----------------------------------------------------------------

TOLD = event_audit.TOLD
ONCE = event_audit.ONCE
DELIVERED = event_audit.DELIVERED
RECEIVED = event_audit.RECEIVED
SIGNED = event_audit.SIGNED
SAME_ID = event_audit.SAME_ID
BOUNDED = event_audit.BOUNDED
MAILED = event_audit.MAILED


def _told(r: Records) -> Told:
    assert r.told is not None
    return r.told


def _event_of(r: Records, kind: OrderEventType) -> dict[str, Any]:
    return next(e for e in _told(r).events if e["type"] == kind.value)


def test_every_event_invariant_checks_something_in_a_sound_run() -> None:
    journeys, records = sound()
    invariants = {i.name: i for i in audit(journeys, records)}
    for name in (TOLD, ONCE, DELIVERED, RECEIVED, SIGNED, SAME_ID, BOUNDED, MAILED):
        assert invariants[name].checked > 0, name
        assert not invariants[name].violations, name
    assert figures(_told(records))["repeats"] == 0


def test_an_event_missing_for_a_fact_is_found() -> None:
    journeys, records = sound()
    paid = _event_of(records, OrderEventType.PAID)
    _told(records).events.remove(paid)
    (violation,) = failed(audit(journeys, records))[TOLD]
    about = f"order {ORDER} (Confirmed, journey 0 (pay)), paid or authorized"
    assert f"{about}: no event {paid['id']}" in violation


def test_a_paid_order_told_authorized_is_found_both_ways() -> None:
    """The PaymentIntent captures at once: the fact is order.paid, not order.authorized."""
    journeys, records = sound()
    paid = _event_of(records, OrderEventType.PAID)
    paid.update(id=eid(OrderEventType.AUTHORIZED), type="order.authorized")
    paid["body_id"] = paid["id"]
    found = failed(audit(journeys, records))
    assert TOLD in found and ONCE in found


def test_a_second_event_id_for_one_fact_is_found() -> None:
    """The same fact told under another id (a fact string that changed between runs)."""
    journeys, records = sound()
    again = told(records, OrderEventType.PAID, "run-2", mail=True)
    violations = failed(audit(journeys, records))[ONCE]
    assert any(again in v and "at most 1" in v for v in violations), violations


def test_an_event_for_a_fact_the_order_does_not_show_is_found() -> None:
    journeys, records = sound()
    told(records, OrderEventType.CANCELLED, mail=True)  # the order is Confirmed
    assert ONCE in failed(audit(journeys, records))


def test_a_cancelled_order_seen_confirmed_must_have_told_both() -> None:
    journeys, records = sound()
    records.orders[ORDER]["status"] = "Cancelled"
    records.workflows[ORDER] = Workflow(exists=True, status="Cancelled", search_status="Cancelled")
    journeys[0].seen = {"Confirmed", "Cancelled"}
    _told(records).events.remove(_event_of(records, OrderEventType.PAID))
    (missing,) = failed(audit(journeys, records))[TOLD][:1]
    assert "no event" in missing
    journeys, records = sound()
    records.orders[ORDER]["status"] = "Cancelled"
    records.workflows[ORDER] = Workflow(exists=True, status="Cancelled", search_status="Cancelled")
    told(records, OrderEventType.CANCELLED, mail=True)
    assert TOLD not in failed(audit(journeys, records))


def test_each_refund_of_the_named_payment_must_be_told_once() -> None:
    journeys, records = sound()
    records.refunds["pi_kept"] = [_refund("re_k", 100)]
    records.orders[ORDER]["amount_refunded"] = Decimal("1.00")
    (violation,) = failed(audit(journeys, records))[TOLD]
    assert f"for refund re_k of pi_kept, the service's, key order:{ORDER}:refund:x" in violation
    told(records, OrderEventType.REFUNDED, "re_k", mail=True)
    assert TOLD not in failed(audit(journeys, records))
    told(records, OrderEventType.REFUNDED, "re_nobody", mail=True)
    assert ONCE in failed(audit(journeys, records))


def test_a_decline_told_more_often_than_stripe_declined_is_found() -> None:
    journeys, records = sound()
    journeys[0].seen = {"Failed", "Confirmed"}
    assert TOLD in failed(audit(journeys, records))  # seen Failed, nothing told
    told(records, OrderEventType.PAYMENT_FAILED, "pi_kept/ch_1", mail=True)
    _told(records).declines["pi_kept"] = 1
    assert failed(audit(journeys, records)) == {}
    told(records, OrderEventType.PAYMENT_FAILED, "pi_kept/1", mail=True)
    assert ONCE in failed(audit(journeys, records))


def test_a_delivery_with_a_bad_signature_is_found() -> None:
    journeys, records = sound()
    placed = _event_of(records, OrderEventType.PLACED)["id"]
    _told(records).tries.append(_try(placed, OrderEventType.PLACED, verified=False))
    (violation,) = failed(audit(journeys, records))[SIGNED]
    assert f"webhook-id {placed}" in violation and "not verified" in violation


def test_a_try_under_another_webhook_id_is_found() -> None:
    journeys, records = sound()
    placed = _event_of(records, OrderEventType.PLACED)["id"]
    _told(records).tries.append(_try(placed, OrderEventType.PLACED, webhook_id="msg_other"))
    assert SAME_ID in failed(audit(journeys, records))


def test_an_event_never_answered_in_time_is_found() -> None:
    """Tried, but every answer came after the workers' timeout (or was an error)."""
    journeys, records = sound()
    placed = _event_of(records, OrderEventType.PLACED)["id"]
    t = _told(records)
    t.tries = [x for x in t.tries if json.loads(x["body"])["id"] != placed]
    t.tries += [
        _try(placed, OrderEventType.PLACED, delay=t.webhook_timeout + 1),
        _try(placed, OrderEventType.PLACED, status=503),
    ]
    assert RECEIVED in failed(audit(journeys, records))


def test_a_delivery_left_failing_or_never_made_is_found() -> None:
    journeys, records = sound()
    t = _told(records)
    t.deliveries[0]["state"] = "failing"
    assert DELIVERED in failed(audit(journeys, records))
    journeys, records = sound()
    t = _told(records)
    t.deliveries = [d for d in t.deliveries if d["target"] != "email"]
    assert DELIVERED in failed(audit(journeys, records))


def test_repeats_within_the_bound_pass_and_beyond_it_are_found() -> None:
    journeys, records = sound()
    t = _told(records)
    placed = _event_of(records, OrderEventType.PLACED)["id"]
    limit = 1 + len(t.retry_delays) + event_audit.MAX_REPEATS
    # Every try failed but the last, two of them twice (a killed worker's, say).
    t.tries = [x for x in t.tries if json.loads(x["body"])["id"] != placed]
    t.tries += [_try(placed, OrderEventType.PLACED, status=503) for _ in range(limit - 1)]
    t.tries.append(_try(placed, OrderEventType.PLACED))
    next(d for d in t.deliveries if d["event_id"] == placed)["attempts"] = limit - 2
    assert failed(audit(journeys, records)) == {}
    assert figures(t)["repeats"] == 2
    t.tries.append(_try(placed, OrderEventType.PLACED))
    assert BOUNDED in failed(audit(journeys, records))


def test_a_mail_repeated_under_its_message_id_is_a_repeat_within_the_bound() -> None:
    journeys, records = sound()
    t = _told(records)
    t.mails.append(dict(t.mails[0]))
    assert failed(audit(journeys, records)) == {}
    assert figures(t)["repeats"] == 1
    t.mails += [dict(t.mails[0]) for _ in range(event_audit.MAX_REPEATS)]
    assert BOUNDED in failed(audit(journeys, records))


def test_two_message_ids_for_one_event_are_found() -> None:
    journeys, records = sound()
    t = _told(records)
    paid = _event_of(records, OrderEventType.PAID)["id"]
    t.mails.append(_mail(f"<{paid}@mail.example.com>"))
    (violation,) = failed(audit(journeys, records))[MAILED]
    assert paid in violation and "Message-IDs" in violation
    journeys, records = sound()
    _told(records).mails.append(_mail("<20261127.1234@vult.localhost>"))
    (violation,) = failed(audit(journeys, records))[MAILED]
    assert "not the mail of a customer-mail event" in violation


def test_a_customer_mail_event_without_its_mail_is_found() -> None:
    journeys, records = sound()
    _told(records).mails.clear()
    (violation,) = failed(audit(journeys, records))[MAILED]
    assert "no e-mail" in violation
