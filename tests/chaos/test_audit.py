"""The chaos suite's audit finds each kind of violation it names: a record set made by hand
for each, against one that is sound."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dev.chaos.audit import OWNER, Invariant, Records, Workflow, audit, redeliveries_acknowledged
from dev.chaos.shoppers import Journey
from vult.domain.payments import OWNER_KEY, REFUND_KEY

ORDER = "0b4f6d1e-0000-4000-8000-000000000001"
SHIPPED = "captured = shipped share, refunded = returned (+ unshipped)"
TWICE = "no PaymentIntent refunded twice by the service (each refund key once; one cancel refund)"
BAD_END = "no workflow failed, timed out, terminated or cancelled (but by the terminate fault)"


def sound() -> tuple[list[Journey], Records]:
    """One journey, paid and Confirmed; a second charge refunded once, in full; another
    system's payment left alone."""
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
    )
    other = Journey(number=1, path="other-systems-payments", key="k1", email="c1@example.com")
    other.finished = True
    other.foreign["pi_theirs"] = "succeeded"
    return [journey, other], records


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
