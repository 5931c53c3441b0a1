"""The activities the order workflow calls, declared by name and signature only.

The workflow imports these, never the implementations in activities/, so loading it loads
no database driver, ORM or Stripe SDK. The worker registers the implementations under the
same names; tests/unit/test_structure.py checks that every stub here has a registered
activity of the same signature.
"""

from __future__ import annotations

import uuid
from typing import NoReturn

from temporalio import activity

from vult.domain.contracts import (
    CancelPaymentIntent,
    CapturePayment,
    ChargeFacts,
    CreatedOrderRow,
    CreateOrderRow,
    CreatePaymentIntent,
    OrderLines,
    OrderPayment,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
    RecordPayment,
    RecordReturn,
    RefundInfo,
    RefundPayment,
    ResumeOutcome,
    StatusChange,
)


def _stub(name: str) -> NoReturn:
    raise NotImplementedError(f"{name} is a stub: the worker runs the implementation")


# ---- PostgreSQL (activities/order_db.py) ----------------------------------------------


@activity.defn(name="create_order_row")
async def create_order_row(req: CreateOrderRow) -> CreatedOrderRow:
    """Snapshot the products, total the order and insert it once (keyed by order id)."""
    _stub("create_order_row")


@activity.defn(name="change_order_status")
async def change_order_status(change: StatusChange) -> None:
    """Move the row to a new status only from an expected one; a replay is a no-op."""
    _stub("change_order_status")


@activity.defn(name="read_order_payment")
async def read_order_payment(order_id: uuid.UUID) -> OrderPayment:
    """The order's status and the PaymentIntent it recorded."""
    _stub("read_order_payment")


@activity.defn(name="record_payment")
async def record_payment(record: RecordPayment) -> bool:
    """Stripe's amounts on the row of an order whose workflow has closed."""
    _stub("record_payment")


@activity.defn(name="read_order_lines")
async def read_order_lines(order_id: uuid.UUID) -> OrderLines:
    """The order's amounts and lines, with what shipped and was returned."""
    _stub("read_order_lines")


@activity.defn(name="record_return")
async def record_return(req: RecordReturn) -> None:
    """A return on the order's row, once."""
    _stub("record_return")


# ---- Stripe (activities/stripe_payments.py) -------------------------------------------


@activity.defn(name="create_payment_intent")
async def create_payment_intent(req: CreatePaymentIntent) -> PaymentIntentInfo:
    _stub("create_payment_intent")


@activity.defn(name="retrieve_payment_intent")
async def retrieve_payment_intent(payment_intent_id: str) -> PaymentIntentSnapshot:
    _stub("retrieve_payment_intent")


@activity.defn(name="cancel_payment_intent")
async def cancel_payment_intent(req: CancelPaymentIntent) -> PaymentIntentSnapshot:
    _stub("cancel_payment_intent")


@activity.defn(name="refund_payment")
async def refund_payment(req: RefundPayment) -> RefundInfo:
    _stub("refund_payment")


@activity.defn(name="read_charge")
async def read_charge(payment_intent_id: str) -> ChargeFacts:
    """Stripe's amounts for the PaymentIntent: captured, refunded, disputed."""
    _stub("read_charge")


@activity.defn(name="capture_payment")
async def capture_payment(req: CapturePayment) -> PaymentIntentSnapshot:
    """Capture part or all of an authorized PaymentIntent; the rest is released."""
    _stub("capture_payment")


# ---- Resuming orders whose workflow is gone (activities/order_resume.py) ----------------


@activity.defn(name="find_orders_to_resume")
async def find_orders_to_resume(limit: int) -> list[uuid.UUID]:
    """Orders that can still change whose workflow is not running (at most `limit`)."""
    _stub("find_orders_to_resume")


@activity.defn(name="resume_order")
async def resume_order(order_id: uuid.UUID) -> ResumeOutcome:
    """Start a new run of the order's workflow from its row, unless one runs or ran to
    its end."""
    _stub("resume_order")


ALL = (
    create_order_row,
    change_order_status,
    read_order_payment,
    record_payment,
    create_payment_intent,
    retrieve_payment_intent,
    cancel_payment_intent,
    refund_payment,
    read_charge,
    capture_payment,
    read_order_lines,
    record_return,
    find_orders_to_resume,
    resume_order,
)
