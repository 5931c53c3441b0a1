"""What the API, the workflow and the activities pass each other (one evolvable model each).

These are internal contracts, serialized by Temporal's pydantic converter (Decimals as exact
strings). The HTTP wire contract is separate, in vult/wire/schemas.py, so either can change alone.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from vult.domain.pricing import Totals
from vult.domain.status import OrderStatus


class Address(BaseModel):
    full_name: str
    address_line1: str
    address_line2: str | None = None
    city: str
    state: str
    postal_code: str
    country: str
    phone: str | None = None


class RequestedLineItem(BaseModel):
    product_id: uuid.UUID
    quantity: int
    size: str | None = None


class OrderRequest(BaseModel):
    """What the customer asked for, already checked for shape by the API."""

    customer_email: str
    customer_id: uuid.UUID | None = None
    shipping_address: Address
    billing_address: Address | None = None
    line_items: list[RequestedLineItem]

    def fingerprint(self) -> str:
        """The same for the same request, whatever its JSON's key order or spacing."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class LineSnapshot(BaseModel):
    """A line item as the order keeps it: the product as the catalogue had it when the
    order was placed (spec 3.1), and how many."""

    product_id: uuid.UUID
    product_name: str
    product_size: str | None = None
    product_image_url: str | None = None
    unit_price: Decimal
    quantity: int


class PricedOrder(BaseModel):
    """The request priced once, by the API from one read of the catalogue: the lines as
    the row will hold them and the totals. The activity saves exactly this."""

    lines: list[LineSnapshot]
    sub_total: Decimal
    tax: Decimal
    shipping_cost: Decimal
    total: Decimal
    currency: str

    def totals(self) -> Totals:
        return Totals(self.sub_total, self.tax, self.shipping_cost, self.total)


class PaymentIntentInfo(BaseModel):
    payment_intent_id: str
    client_secret: str
    amount: int  # minor units
    currency: str  # lower case, as Stripe writes it


class RefundInfo(BaseModel):
    refund_id: str
    status: str  # Stripe's: pending, succeeded, failed, canceled, requires_action
    amount: int
    currency: str
    # The idempotency key this service made it with (its metadata), or None for a refund
    # someone else made (the Dashboard, another system): reused only when it is the key.
    key: str | None = None


class DisputeInfo(BaseModel):
    """A dispute (chargeback) of a PaymentIntent's charge, as Stripe reports it."""

    dispute_id: str
    status: str  # Stripe's: warning_needs_response, needs_response, under_review, won, lost...
    amount: int
    reason: str = ""
    evidence_due_by: datetime | None = None
    # Stripe's word on whether the charge may still be refunded (an inquiry's may; a
    # chargeback's may not). Absent from what older builds recorded: not refundable.
    is_charge_refundable: bool = False


class ChargeFacts(BaseModel):
    """Stripe's amounts for one PaymentIntent, whoever moved the money: the truth every
    money decision is computed from (vult/domain/payments.py)."""

    payment_intent_id: str
    currency: str = ""
    amount_captured: int = 0
    # Every refund that has not failed or been canceled, ours or not.
    amount_refunded: int = 0
    refunds: list[RefundInfo] = Field(default_factory=list)
    dispute: DisputeInfo | None = None
    # Authorized and not captured yet (manual capture): what a capture could still take.
    amount_capturable: int = 0


class OrderTiming(BaseModel):
    """The workflow's durable timers, from settings (the workflow itself reads none)."""

    payment_window: timedelta = timedelta(hours=24)
    reconcile_after: timedelta = timedelta(minutes=15)
    reconcile_max_interval: timedelta = timedelta(hours=6)
    cancelled_grace: timedelta = timedelta(days=3)
    # An order needing attention retries its stuck step by itself this often (ops may
    # retry sooner with the `retry` update).
    attention_retry: timedelta = timedelta(minutes=15)
    # A PaymentIntent mid-charge cannot be cancelled: ask Stripe again this often.
    in_flight_retry: timedelta = timedelta(seconds=30)
    # Ops are reminded this long before a dispute's evidence is due (Stripe gives 7-21 days).
    dispute_reminder: timedelta = timedelta(days=3)
    # A card authorization (capture at shipment) lapses after about 7 days at Stripe; ops
    # are reminded this long before, and an order not shipped by then is cancelled (the
    # authorization released) or re-authorized, as `on_authorization_expiry` says.
    authorization_validity: timedelta = timedelta(days=7)
    authorization_reminder: timedelta = timedelta(days=1)
    on_authorization_expiry: str = "cancel"  # or "reauthorize"
    # How long a delivered order's workflow stays open for returns.
    return_window: timedelta = timedelta(days=30)


class PaymentEvent(BaseModel):
    """A verified Stripe event about one of the order's PaymentIntents (a signal): about
    the PaymentIntent itself, its refunds or a dispute of its charge."""

    event_id: str
    event_type: str
    payment_intent_id: str


class Payments(BaseModel):
    """The order's PaymentIntents: the current one, every one made, and the clocks that
    watch the current one."""

    current: PaymentIntentInfo | None = None  # the PaymentIntent the order is paid with
    attempt: int = 0  # PaymentIntents made so far (each attempt's key is its own)
    intent_ids: list[str] = Field(default_factory=list)  # every one made, oldest first
    next_reconcile_at: datetime | None = None  # when to ask Stripe if no webhook came
    reconcile_attempts: int = 0
    # What the workflow concluded from the last Stripe event, in a sentence for ops.
    last_note: str | None = None
    # The payment window closed while the PaymentIntent was mid-charge (`processing`): it
    # waits for Stripe's outcome, asking again at this time.
    window_extended_until: datetime | None = None
    # Releases of authorizations asked of Stripe (each under a key of its own: a key's
    # first answer is replayed for 24 hours, so a release never meets an earlier answer).
    release_asks: int = 0
    # The current PaymentIntent's latest charge at Stripe, as last read (names a decline).
    last_charge: str | None = None


class HoldPhase(StrEnum):
    """Where the card authorization of an order paid at shipment stands."""

    NONE = "none"  # no authorization seen (paid at once, or not paid yet)
    HELD = "held"  # authorized, nothing captured: its lapse is counted
    CAPTURED = "captured"  # captured (at shipment, or by hand before the lapse)
    OVER = "over"  # lapsed or released before anything was captured


class Hold(BaseModel):
    """The card authorization (capture at shipment): when it was seen, when it lapses, what
    was captured."""

    authorized_at: datetime | None = None
    # When it lapses, as Stripe says for its charge (capture_before); None: authorized_at
    # + AUTHORIZATION_VALIDITY.
    ends_at: datetime | None = None
    reminded: bool = False  # ops were reminded of the lapse
    over: bool = False  # lapsed (or released) before anything was captured
    captured: int | None = None  # minor units captured; None until then
    # A renewal of a lapsed authorization made at Stripe and not yet the order's payment
    # (its read-back may have parked): its own events must not release it.
    renewal: str | None = None

    @property
    def phase(self) -> HoldPhase:
        if self.captured is not None:
            return HoldPhase.CAPTURED
        if self.over:
            return HoldPhase.OVER
        return HoldPhase.NONE if self.authorized_at is None else HoldPhase.HELD


class Fulfilment(BaseModel):
    """Shipping and returns."""

    # A shipment whose capture Stripe refused, waiting for ops (what shipped is on the
    # row's lines).
    pending_shipment: ShipOrder | None = None
    # A shipment whose money moved at Stripe and whose row write has not landed yet.
    shipment_moved: ShipmentMoved | None = None
    # When the order was delivered: its workflow stays open for returns until the window.
    delivered_at: datetime | None = None
    returns: dict[str, ReturnRecord] = Field(default_factory=dict)  # by Idempotency-Key


class Money(BaseModel):
    """Money going back, and Stripe's amounts as last read: the truth money decisions are
    taken on."""

    refunds: dict[str, RefundInfo] = Field(default_factory=dict)  # by PaymentIntent id
    # Refunds Stripe reported failed or canceled, by PaymentIntent id: that money is still
    # owed to the customer, and the next refund of it needs a new key.
    failed_refunds: dict[str, list[str]] = Field(default_factory=dict)
    # Refunds other than a cancellation's (a return's, an unshipped share's, one above the
    # share), by their step's key: watched until Stripe settles them.
    watched_refunds: dict[str, WatchedRefund] = Field(default_factory=dict)
    # Stripe's amounts for each PaymentIntent that took money, as last read back.
    charges: dict[str, ChargeFacts] = Field(default_factory=dict)
    # A refund of ours failed at Stripe: the next one is made only when ops ask (`retry`).
    retry_asked: bool = False
    # When a cancelled order past its grace period last asked Stripe about money in flight.
    checked_at: datetime | None = None
    # Failed refunds ops settled by hand (`resolve`), as the row keeps them: a run resumed
    # from the row does not take them for money owed.
    settled_refund_ids: list[str] = Field(default_factory=list)


class Cancelling(BaseModel):
    """A cancellation: asked for, asked of Stripe, done."""

    # Asked for and not yet carried out (Stripe or the database refused or was away, or
    # the PaymentIntent is mid-charge): the workflow finishes it before anything else.
    pending: str | None = None
    asks: int = 0  # asks of Stripe to cancel the PaymentIntent so far
    next_ask_at: datetime | None = None  # the next ask, while it is mid-charge
    at: datetime | None = None  # when the order became Cancelled
    reason: str | None = None


class Ops(BaseModel):
    """What ops must see and act on."""

    # Set when a step failed in a way no retry fixed: the order waits for ops (the `retry`
    # update) or for `retry_at`, and keeps taking events meanwhile.
    attention: str | None = None
    retry_at: datetime | None = None
    parked_events: list[PaymentEvent] = Field(default_factory=list)
    # What ops must look at that no retry settles (a full refund made outside the service,
    # an open dispute), by kind: kept until the condition clears or ops resolve it.
    notices: dict[str, str] = Field(default_factory=dict)
    dispute_reminded: str | None = None  # the dispute ops were last reminded of
    # Problems ops resolved by hand (the `resolve` update), oldest first.
    resolutions: list[Resolution] = Field(default_factory=list)
    # When the present parking began (names its order.needs_attention event).
    attention_since: datetime | None = None
    # When this order began telling its facts as order events (its first run on 1.1 or
    # later); None in a state a run that told nothing carried over.
    telling_since: datetime | None = None
    # The facts read from Stripe already told as order events in this run ("refund:<id>",
    # "dispute:<id>", "dispute-closed:<id>", "attention:<since>").
    told: list[str] = Field(default_factory=list)


class OrderState(BaseModel):
    """Everything the workflow knows, grouped by what it is about; carried over
    continue-as-new, and rebuilt from the row when an order is resumed."""

    status: OrderStatus | None = None  # None until the order row exists
    order_number: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    created_at: datetime | None = None
    payments: Payments = Field(default_factory=Payments)
    hold: Hold = Field(default_factory=Hold)
    fulfilment: Fulfilment = Field(default_factory=Fulfilment)
    money: Money = Field(default_factory=Money)
    cancelling: Cancelling = Field(default_factory=Cancelling)
    ops: Ops = Field(default_factory=Ops)
    seen_event_ids: list[str] = Field(default_factory=list)
    # Events received but not yet handled when the workflow continued as new.
    queued_events: list[PaymentEvent] = Field(default_factory=list)
    # Each time a run of this order's workflow started from the row after the previous run
    # ended while the order could still change (terminated in the Web UI, say), oldest first.
    resumes: list[ResumedRun] = Field(default_factory=list)
    # A resumed run has yet to read Stripe's word on every PaymentIntent of the order.
    catching_up: bool = False
    # Row writes this order's workflow has seen land, across its runs (a resumed run takes
    # the row's count). The next write is numbered one more (WriteStamp.number).
    writes: int = 0


class ResumedRun(BaseModel):
    at: datetime
    # How the previous run ended: TERMINATED, FAILED, TIMED_OUT, CANCELED, or NOT_STARTED
    # (a row without any workflow).
    previous: str


class OrderWorkflowInput(BaseModel):
    order_id: uuid.UUID
    # The customer's request; None for a run resumed from the order's row (`state` set).
    request: OrderRequest | None = None
    timing: OrderTiming = Field(default_factory=OrderTiming)
    # Index the order for ops' searches (vult/temporal/search_attributes.py). Off only on a server
    # that cannot register custom attributes (Temporal's time-skipping test server).
    index_for_search: bool = True
    # Drawn by the API, which indexes the order under it when it starts the workflow; the
    # activity tries it first and draws another only if it is taken.
    order_number: str | None = None
    state: OrderState | None = None  # set when continuing as new, or resuming
    # PAYMENT_CAPTURE when the order was placed: "automatic" (at payment) or "at_shipment".
    capture: str = "automatic"
    # The API's snapshot of the catalogue and its totals, and the request's fingerprint, each
    # made once there; None in inputs of orders placed before the API made them.
    priced: PricedOrder | None = None
    request_fingerprint: str | None = None


class CancelOrder(BaseModel):
    reason: str = "Cancelled by customer"


class ResolveOrder(BaseModel):
    """Ops: what was done outside the service about the order's problem."""

    note: str


class Resolution(BaseModel):
    at: datetime
    note: str
    problem: str  # what was flagged when ops resolved it


class LineQuantity(BaseModel):
    line_item_id: str
    quantity: int


class WatchedRefund(BaseModel):
    """A refund this service made for a shipment's unshipped share, a capture above the
    share or a return, watched until Stripe settles it: one that fails is money still owed
    (ops `retry` makes it again under a fresh key, or `resolve` it)."""

    payment_intent_id: str
    key: str  # the step's own key; a retry refunds under `<key>:again-<n>`
    what: str  # for ops: "the return 'Too small'", "the unshipped share"
    amount: int  # minor units
    refund_id: str
    status: str
    retries: int = 0


class ShipmentMoved(BaseModel):
    """A shipment whose money has moved at Stripe (its share captured, or the unshipped
    share refunded) and whose row is not yet written: a repeated shipment carries on this
    one instead of moving money again."""

    lines: dict[str, int] | None  # None: every line
    amount_captured: Decimal | None = None
    payment_intent_id: str  # whose amounts the row takes


class ShipOrder(BaseModel):
    carrier: str
    tracking_number: str
    # The lines shipped; None: every line (what is left of the order is never shipped).
    line_items: list[LineQuantity] | None = None


class ReturnRequest(BaseModel):
    """Ops take back some lines, or an amount, of a shipped or delivered order."""

    key: str  # the request's Idempotency-Key: a retried request refunds once
    reason: str
    line_items: list[LineQuantity] | None = None
    amount: Decimal | None = None  # major units


class ReturnRecord(BaseModel):
    key: str
    reason: str
    amount: Decimal  # refunded, major units
    line_items: list[LineQuantity] = Field(default_factory=list)
    refund_id: str = ""
    refund_status: str = ""
    at: datetime
    request: ReturnRequest | None = None  # as asked: the same key must ask the same


class OrderLines(BaseModel):
    """The order's amounts and lines, as fulfilment reads them from the row."""

    sub_total: Decimal
    tax: Decimal
    shipping_cost: Decimal
    total: Decimal
    lines: list[OrderLineInfo]


class OrderLineInfo(BaseModel):
    line_item_id: str
    unit_price: Decimal
    quantity: int
    shipped: int = 0
    returned: int = 0


class PlacedOrder(BaseModel):
    """Result of the `place` update: the order exists in the database."""

    order_id: uuid.UUID
    order_number: str
    status: OrderStatus


# ---- activity inputs and outputs -------------------------------------------------------


class EmittedEvent(BaseModel):
    """An order event as the workflow decides it (vult/domain/order_events.py): written to
    the outbox in the same transaction as the row change that records its fact."""

    event_id: str
    type: str  # an OrderEventType value
    at: datetime  # when the workflow recorded the fact
    # What only this kind says (docs/events.md): JSON values, camelCase keys.
    detail: dict[str, str | int | bool | None | list[dict[str, str | int]]] = Field(
        default_factory=dict
    )


class DeliveryInput(BaseModel):
    """One event to one target (an endpoint's name or the customer's e-mail): the
    EventDeliveryWorkflow's input, and how long it waits between tries."""

    event_id: str
    event_type: str
    target: str
    run: int = 1  # 1, then one more for each replay ops ask for
    retry_delays: list[float]


class DeliveryAttempt(BaseModel):
    event_id: str
    target: str
    attempt: int  # 1 for the first try of this run
    run: int = 1  # which run of the delivery (DeliveryInput.run)
    # Seconds until the next try, or None: this is the last, a failure fails the delivery.
    next_try_in: float | None


class DeliveryAnswer(BaseModel):
    """What one try came to: delivered; refused for good (an address the mail server
    refuses, an endpoint gone (410), removed from the settings or disabled): no more
    tries; or try_again."""

    outcome: str  # "delivered" | "refused" | "disabled" | "try_again"
    status: int | None = None  # the HTTP status or SMTP code, when there was one
    text: str = ""  # the answer's first words, or the error, for ops


class CreateOrderRow(BaseModel):
    order_id: uuid.UUID
    created_at: datetime
    request: OrderRequest
    order_number: str | None = None  # the number to try first
    # What the API priced and fingerprinted (OrderWorkflowInput); None for an order placed
    # before the API did, which the activity then snapshots and fingerprints itself.
    priced: PricedOrder | None = None
    request_fingerprint: str | None = None
    events: list[EmittedEvent] = Field(default_factory=list)  # order.placed


class CreatedOrderRow(BaseModel):
    order_id: uuid.UUID
    order_number: str
    status: OrderStatus
    total: Decimal
    currency: str


class WriteStamp(BaseModel):
    """Names one row write of an order's workflow (docs/architecture.md, "Writes a lost
    workflow task made"). The row keeps the stamp of its last write. A write replaces the
    row's, whatever the status, only when that one is of the same chain of runs (`chain`),
    made by a workflow task that began no later than this write's (`task_began`), with a
    number at or above this one's (`number`): a task whose writes the workflow never saw
    land, which it has run again. Any other write is held to the expected status."""

    # The first run of the workflow's chain (continue-as-new keeps it; a resumed order's
    # new run, started afresh, begins a chain of its own).
    chain: str
    # When the workflow task the write is made in began (workflow.now()): every attempt of
    # a task, and every later task, begins later; the writes of one task share it.
    task_began: datetime
    # OrderState.writes + 1: the writes the workflow saw land, plus this one.
    number: int


class StatusChange(BaseModel):
    """A conditional status write: applied only if the row is in one of `expected`."""

    order_id: uuid.UUID
    expected: list[OrderStatus]
    new_status: OrderStatus
    at: datetime
    payment_intent_id: str | None = None
    stripe_payment_status: str | None = None
    payment_error_message: str | None = None
    cancellation_reason: str | None = None
    stripe_refund_id: str | None = None
    shipping_carrier: str | None = None
    tracking_number: str | None = None
    amount_refunded: Decimal | None = None  # major units, as Stripe's amounts say
    dispute_status: str | None = None
    resolution_note: str | None = None
    resumed_at: datetime | None = None
    amount_captured: Decimal | None = None  # major units, captured at shipment
    pending_cancel_reason: str | None = None  # a cancellation recorded mid-charge
    settled_refund_ids: list[str] | None = None  # failed refunds ops resolved: added
    # Shipped quantities by line item id; with `ship_all`, every line in full.
    shipped_lines: dict[str, int] | None = None
    ship_all: bool = False
    # The facts this change records, as order events (none when the row is already there).
    events: list[EmittedEvent] = Field(default_factory=list)
    # Which write of the workflow's this is; None from a build that did not stamp them.
    # The row keeps it: a write that finds there a stamp of a lost task of the same run
    # replaces what that task wrote, whatever its status (WriteStamp).
    stamp: WriteStamp | None = None


class RecordPayment(BaseModel):
    """Stripe's amounts written to the order row whatever its status (an order whose
    workflow has closed)."""

    order_id: uuid.UUID
    at: datetime
    stripe_payment_status: str
    amount_refunded: Decimal
    dispute_status: str | None = None
    # The refunds and dispute facts Stripe's amounts show (the outbox keeps each once).
    events: list[EmittedEvent] = Field(default_factory=list)


class CreatePaymentIntent(BaseModel):
    order_id: uuid.UUID
    order_number: str
    amount: int
    currency: str
    idempotency_key: str
    capture_method: str = "automatic"  # "manual": capture at shipment
    # Keep the card for an authorization later without the customer (capture at shipment
    # with ON_AUTHORIZATION_EXPIRY=reauthorize): a Customer, setup_future_usage.
    save_card: bool = False
    # Set to re-authorize off-session with the card the lapsed authorization saved on
    # `customer`.
    payment_method: str | None = None
    customer: str | None = None


class CapturePayment(BaseModel):
    payment_intent_id: str
    amount: int  # minor units; the rest of the authorization is released
    idempotency_key: str


class RecordReturn(BaseModel):
    order_id: uuid.UUID
    record: ReturnRecord
    at: datetime
    stripe_payment_status: str
    amount_refunded: Decimal
    events: list[EmittedEvent] = Field(default_factory=list)  # order.returned


class PaymentIntentSnapshot(BaseModel):
    """What Stripe says about a PaymentIntent now."""

    payment_intent_id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    last_error_message: str | None = None
    order_id: str | None = None  # from the PaymentIntent's metadata
    owner: str | None = None  # the owner marker in its metadata (None: made before it existed)
    payment_method: str | None = None
    amount_capturable: int = 0
    customer: str | None = None
    # An authorization not captured yet: when it lapses, the charge's
    # payment_method_details.card.capture_before.
    capture_before: datetime | None = None
    latest_charge: str | None = None  # the charge of its latest try, when one was made


class OrderPayment(BaseModel):
    """What the order row says about its payment (for a PaymentIntent the workflow of the
    order no longer watches)."""

    exists: bool
    status: OrderStatus | None = None
    payment_intent_id: str | None = None  # the one that paid, or the latest attempt
    settled_refund_ids: list[str] = []  # failed refunds of ours ops resolved: not owed


class LatePayment(BaseModel):
    """Stripe's word on a PaymentIntent whose order's workflow has closed (or never ran)."""

    payment_intent_id: str
    order_id: uuid.UUID | None = None  # from the PaymentIntent's metadata
    event_type: str = ""
    owner: str = ""  # this deployment's owner marker: a PaymentIntent with another is left alone
    attention: str | None = None  # carried over continue-as-new: the flag stays up
    more_events: list[str] = []  # event types seen before continue-as-new


class CancelPaymentIntent(BaseModel):
    payment_intent_id: str
    idempotency_key: str


class RefundPayment(BaseModel):
    order_id: uuid.UUID
    payment_intent_id: str
    idempotency_key: str
    # Minor units. None: whatever is still held (captured, less every live refund and any
    # disputed amount), read from Stripe by the activity.
    amount: int | None = None


class ResumeOutcome(BaseModel):
    """What resuming one order did: `resumed`, or why not (`running`, `completed`: a run
    that ended normally is never resumed, `settled`: nothing can change any more,
    `not_found`)."""

    order_id: uuid.UUID
    outcome: str
    previous: str | None = None  # how the previous run ended, when resumed


class SweepReport(BaseModel):
    found: int = 0
    resumed: list[uuid.UUID] = Field(default_factory=list)
    failed: list[uuid.UUID] = Field(default_factory=list)
