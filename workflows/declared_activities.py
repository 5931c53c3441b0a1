"""Every activity the workflows call, declared once: its name, input and output, where it
runs (a local activity or a regular one), its timeouts and retries (workflows/policies.py),
the line ops read beside it in the Web UI, and which implementation in activities/ does it.

The workflows call these (through workflows/steps.py, which builds the requests and maps
failures); the worker registers, for each, the method of the same name on its
implementation (`registered`); tests/unit/test_structure.py checks that each
implementation's signature is the declared one. The workflows import no implementation,
so loading them loads no database driver, ORM or Stripe SDK.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.workflow import ActivityConfig, LocalActivityConfig

from vult.domain.contracts import (
    CancelPaymentIntent,
    CapturePayment,
    ChargeFacts,
    CreatedOrderRow,
    CreateOrderRow,
    CreatePaymentIntent,
    DeliveryAnswer,
    DeliveryAttempt,
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
from workflows import policies

In = TypeVar("In")
Out = TypeVar("Out")

# The implementations (activities/), by the name `registered` knows them under.
ORDER_DB, STRIPE, RESUME = "order_db", "stripe_payments", "order_resume"
DELIVERY = "event_delivery"


@dataclass(frozen=True)
class _Declared(Generic[In, Out]):
    name: str
    input: Any  # the type of its one argument (a model, an id, a number)
    output: Any  # the type of its result
    summary: Callable[[In], str]  # the Web UI's line beside the call
    implemented_by: str  # ORDER_DB, STRIPE, RESUME or DELIVERY


@dataclass(frozen=True)
class LocalActivity(_Declared[In, Out]):
    """Runs in the worker beside the workflow: no server round trip (short, on the hot path)."""

    config: LocalActivityConfig

    async def __call__(self, arg: In, *, summary: str | None = None) -> Out:
        config = self.config.copy()
        config["summary"] = summary or self.summary(arg)
        result: Out = await workflow.execute_local_activity(
            self.name, arg, result_type=self.output, **config
        )
        return result


@dataclass(frozen=True)
class Activity(_Declared[In, Out]):
    """Scheduled on the task queue: for calls that may wait long or that several tries
    should not hold a workflow task for."""

    config: ActivityConfig

    async def __call__(
        self, arg: In, *, summary: str | None = None, config: ActivityConfig | None = None
    ) -> Out:
        chosen = (config or self.config).copy()
        chosen["summary"] = summary or self.summary(arg)
        result: Out = await workflow.execute_activity(
            self.name, arg, result_type=self.output, **chosen
        )
        return result


# ---- PostgreSQL (activities/order_db.py) ----------------------------------------------

create_order_row: LocalActivity[CreateOrderRow, CreatedOrderRow] = LocalActivity(
    "create_order_row",
    CreateOrderRow,
    CreatedOrderRow,
    lambda _: "Snapshot the products, total the order and save it",
    ORDER_DB,
    policies.CREATE_ORDER,
)
change_order_status: LocalActivity[StatusChange, None] = LocalActivity(
    "change_order_status",
    StatusChange,
    type(None),
    lambda change: (
        f"Record {change.new_status}"
        if change.new_status != change.expected[0]
        else f"Record Stripe details ({change.new_status})"
    ),
    ORDER_DB,
    policies.DB_WRITE,
)
accept_update: Activity[str, None] = Activity(
    "accept_update",
    str,
    type(None),
    lambda update: f"Accept the {update} update before acting on it",
    ORDER_DB,
    policies.ACCEPT,
)
read_order_payment: LocalActivity[uuid.UUID, OrderPayment] = LocalActivity(
    "read_order_payment",
    uuid.UUID,
    OrderPayment,
    lambda _: "Read the order's payment from the database",
    ORDER_DB,
    policies.DB_WRITE,
)
record_payment: LocalActivity[RecordPayment, bool] = LocalActivity(
    "record_payment",
    RecordPayment,
    bool,
    lambda record: f"Record {record.stripe_payment_status}",
    ORDER_DB,
    policies.DB_WRITE,
)
read_order_lines: LocalActivity[uuid.UUID, OrderLines] = LocalActivity(
    "read_order_lines",
    uuid.UUID,
    OrderLines,
    lambda _: "Read the order's lines",
    ORDER_DB,
    policies.DB_WRITE,
)
# Answers when the return was first recorded (None in a history recorded before it did).
record_return: LocalActivity[RecordReturn, datetime | None] = LocalActivity(
    "record_return",
    RecordReturn,
    datetime | None,
    lambda req: f"Record the return of {req.record.amount}",
    ORDER_DB,
    policies.DB_WRITE,
)

# ---- Stripe (activities/stripe_payments.py) -------------------------------------------

create_payment_intent: LocalActivity[CreatePaymentIntent, PaymentIntentInfo] = LocalActivity(
    "create_payment_intent",
    CreatePaymentIntent,
    PaymentIntentInfo,
    lambda req: f"Create a PaymentIntent for {req.amount} {req.currency} (minor units)",
    STRIPE,
    policies.STRIPE_INTERACTIVE,
)
retrieve_payment_intent: LocalActivity[str, PaymentIntentSnapshot] = LocalActivity(
    "retrieve_payment_intent",
    str,
    PaymentIntentSnapshot,
    lambda pi: f"Ask Stripe about PaymentIntent {pi}",
    STRIPE,
    policies.STRIPE_READ,
)
cancel_payment_intent: Activity[CancelPaymentIntent, PaymentIntentSnapshot] = Activity(
    "cancel_payment_intent",
    CancelPaymentIntent,
    PaymentIntentSnapshot,
    lambda req: f"Cancel PaymentIntent {req.payment_intent_id} at Stripe",
    STRIPE,
    policies.STRIPE_BACKGROUND,  # STRIPE_INTERACTIVE_CALL when a customer waits on it
)
refund_payment: Activity[RefundPayment, RefundInfo] = Activity(
    "refund_payment",
    RefundPayment,
    RefundInfo,
    lambda req: (
        f"Refund {req.payment_intent_id}: "
        + ("what is still held" if req.amount is None else f"{req.amount} (minor units)")
    ),
    STRIPE,
    policies.STRIPE_BACKGROUND,
)
read_charge: Activity[str, ChargeFacts] = Activity(
    "read_charge",
    str,
    ChargeFacts,
    lambda pi: f"Read {pi}'s amounts at Stripe",
    STRIPE,
    policies.STRIPE_BACKGROUND,
)
capture_payment: Activity[CapturePayment, PaymentIntentSnapshot] = Activity(
    "capture_payment",
    CapturePayment,
    PaymentIntentSnapshot,
    lambda req: f"Capture {req.amount} of {req.payment_intent_id}",
    STRIPE,
    policies.STRIPE_INTERACTIVE_CALL,
)

# ---- Resuming orders whose workflow is gone (activities/order_resume.py) --------------

find_orders_to_resume: Activity[int, list[uuid.UUID]] = Activity(
    "find_orders_to_resume",
    int,
    list[uuid.UUID],
    lambda _: "Find orders that can still change with no workflow",
    RESUME,
    policies.FIND_ORPHANS,
)
resume_order: Activity[uuid.UUID, ResumeOutcome] = Activity(
    "resume_order",
    uuid.UUID,
    ResumeOutcome,
    lambda order_id: f"Resume the workflow of order {order_id}",
    RESUME,
    policies.RESUME,
)

# ---- Order events to the shop's systems and the customer (activities/event_delivery.py)

deliver_event: LocalActivity[DeliveryAttempt, DeliveryAnswer] = LocalActivity(
    "deliver_event",
    DeliveryAttempt,
    DeliveryAnswer,
    lambda a: f"Deliver {a.event_id} to {a.target} (try {a.attempt})",
    DELIVERY,
    policies.DELIVERY_TRY,
)
enable_endpoint: Activity[str, bool] = Activity(
    "enable_endpoint",
    str,
    bool,
    lambda name: f"Turn webhook endpoint {name} back on",
    DELIVERY,
    policies.START_PENDING_DELIVERIES,
)
start_pending_deliveries: Activity[int, int] = Activity(
    "start_pending_deliveries",
    int,
    int,
    lambda _: "Start order event deliveries whose start was lost",
    DELIVERY,
    policies.START_PENDING_DELIVERIES,
)

ALL: tuple[_Declared[Any, Any], ...] = (
    create_order_row,
    change_order_status,
    accept_update,
    read_order_payment,
    record_payment,
    read_order_lines,
    record_return,
    create_payment_intent,
    retrieve_payment_intent,
    cancel_payment_intent,
    refund_payment,
    read_charge,
    capture_payment,
    find_orders_to_resume,
    resume_order,
    deliver_event,
    enable_endpoint,
    start_pending_deliveries,
)


def registered(implementations: Mapping[str, object]) -> list[Callable[..., Any]]:
    """What the worker registers: for each declared activity, the method of its name on
    its implementation (`implementations`: ORDER_DB, STRIPE, RESUME -> the object)."""
    return [getattr(implementations[d.implemented_by], d.name) for d in ALL]
