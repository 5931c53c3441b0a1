"""SQLAlchemy 2 models for spec 4.1 (orders), 4.2 (line items) and the product catalogue.

Names are PostgreSQL's idiom (snake_case); lengths, precision, nullability, uniqueness,
indexes and the cascade are the spec's. Columns beyond the spec serve the rest of the
lifecycle (cancellation, refunds, shipping) and are all nullable.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vult.domain.status import OrderStatus

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_STATUS_NAMES = ", ".join(f"'{s.value}'" for s in OrderStatus)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_NAMES})", name="status_known"),
        CheckConstraint("sub_total >= 0 AND tax >= 0 AND shipping_cost >= 0", name="amounts"),
        CheckConstraint("total = sub_total + tax + shipping_cost", name="total_adds_up"),
        Index(None, "customer_id"),
        Index(None, "customer_email"),
        Index(None, "status"),
        Index(None, "created_date"),
        Index(None, "stripe_payment_intent_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_number: Mapped[str] = mapped_column(String(50), unique=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    customer_email: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(50), default=OrderStatus.Pending.value)

    sub_total: Mapped[Decimal] = mapped_column(Money)
    tax: Mapped[Decimal] = mapped_column(Money)
    shipping_cost: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")

    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    stripe_payment_status: Mapped[str | None] = mapped_column(String(50))
    payment_error_message: Mapped[str | None] = mapped_column(String(1000))
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255))
    # Stripe's amounts, whoever moved the money: refunded (every refund not failed) in the
    # order's currency, and the status of a dispute of its charge (open or how it ended).
    amount_refunded: Mapped[Decimal | None] = mapped_column(Money)
    dispute_status: Mapped[str | None] = mapped_column(String(50))
    # What ops noted when they resolved a problem by hand (the `resolve` command).
    resolution_note: Mapped[str | None] = mapped_column(String(1000))
    # When a new run of the order's workflow last started from this row, its previous run
    # having ended while the order could still change (vult/temporal/orphans.py).
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Captured at shipment (capture mode at_shipment), and when the order was delivered
    # (its return window runs from then).
    amount_captured: Mapped[Decimal | None] = mapped_column(Money)
    delivered_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancellation_reason: Mapped[str | None] = mapped_column(String(500))
    # A cancellation recorded while the payment was mid-charge (202), to be completed once
    # it settles: carried on by a resumed run. Meaningful only while not Cancelled.
    pending_cancel_reason: Mapped[str | None] = mapped_column(String(500))
    # Refunds of ours that failed and that ops resolved (paid back another way): not owed.
    settled_refund_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String(255)))
    # The mail server's answer when it refused the customer's address for good: no more
    # e-mails are tried for this order (docs/events.md).
    customer_email_refused: Mapped[str | None] = mapped_column(String(500))
    # The stamp of the order workflow's write that last changed this row (WriteStamp): a
    # write made by a workflow task that was then lost is known by it, and replaced.
    # Clearing workflow_chain makes the next write hold to the status (a row put right by
    # hand).
    workflow_chain: Mapped[str | None] = mapped_column(String(64))
    workflow_task_began: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    workflow_write: Mapped[int | None] = mapped_column(Integer)
    shipping_carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of the create request (OrderRequest.fingerprint): binds an Idempotency-Key to it.
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))

    shipping_full_name: Mapped[str] = mapped_column(String(200))
    shipping_address_line1: Mapped[str] = mapped_column(String(500))
    shipping_address_line2: Mapped[str | None] = mapped_column(String(500))
    shipping_city: Mapped[str] = mapped_column(String(100))
    shipping_state: Mapped[str] = mapped_column(String(100))
    shipping_postal_code: Mapped[str] = mapped_column(String(20))
    shipping_country: Mapped[str] = mapped_column(String(100))
    shipping_phone: Mapped[str | None] = mapped_column(String(50))

    use_separate_billing_address: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false")
    )
    billing_full_name: Mapped[str | None] = mapped_column(String(200))
    billing_address_line1: Mapped[str | None] = mapped_column(String(500))
    billing_address_line2: Mapped[str | None] = mapped_column(String(500))
    billing_city: Mapped[str | None] = mapped_column(String(100))
    billing_state: Mapped[str | None] = mapped_column(String(100))
    billing_postal_code: Mapped[str | None] = mapped_column(String(20))
    billing_country: Mapped[str | None] = mapped_column(String(100))
    billing_phone: Mapped[str | None] = mapped_column(String(50))

    created_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    line_items: Mapped[list[LineItem]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="LineItem.position",
        lazy="selectin",
    )


class LineItem(Base):
    __tablename__ = "line_items"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint(
            "quantity_returned >= 0 AND quantity_returned <= COALESCE(quantity_shipped, 0)"
            " AND (quantity_shipped IS NULL OR quantity_shipped BETWEEN 0 AND quantity)",
            name="returned_within_shipped",
        ),
        Index(None, "order_id"),
        Index(None, "product_id"),
    )

    line_item_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.order_id", ondelete="CASCADE")
    )
    # Keeps the customer's order of items; not part of the DTO.
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    # Product snapshot, immutable after the order is placed. SubTotal is computed, not stored.
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    product_name: Mapped[str] = mapped_column(String(200))
    product_size: Mapped[str | None] = mapped_column(String(50))
    product_image_url: Mapped[str | None] = mapped_column(String(2000))
    unit_price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[int] = mapped_column(Integer)
    # Of `quantity`: shipped (null until the order ships), and of those, returned.
    quantity_shipped: Mapped[int | None] = mapped_column(Integer)
    quantity_returned: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    order: Mapped[Order] = relationship(back_populates="line_items")


class OrderReturn(Base):
    """A return ops took: lines (or an amount) of a shipped or delivered order, refunded
    once under its Idempotency-Key."""

    __tablename__ = "order_returns"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    return_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    amount: Mapped[Decimal] = mapped_column(Money)
    refund_id: Mapped[str | None] = mapped_column(String(255))
    refund_status: Mapped[str | None] = mapped_column(String(50))
    # [{"lineItemId", "quantity"}]; empty for a return of an amount.
    line_items: Mapped[list[dict[str, object]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    created_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrderPaymentIntent(Base):
    """Every PaymentIntent this service created, with its order: the Stripe account is
    shared, and an event is acted on only when it is about one of these (or carries this
    deployment's owner marker, or, made before the marker, names an order we have)."""

    __tablename__ = "order_payment_intents"
    __table_args__ = (Index(None, "order_id"),)

    payment_intent_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.order_id", ondelete="CASCADE")
    )
    created_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Product(Base):
    """The catalogue the shop sells from; orders copy what they need at order time."""

    __tablename__ = "products"
    __table_args__ = (CheckConstraint("estimated_msrp >= 0", name="msrp_not_negative"),)

    product_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    size: Mapped[str | None] = mapped_column(String(50))
    estimated_msrp: Mapped[Decimal] = mapped_column(Money)
    image_urls: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))


_DELIVERY_STATES = "'pending', 'failing', 'delivered', 'failed', 'refused', 'disabled'"


class OrderEvent(Base):
    """The outbox: each event an order emitted, once (docs/events.md). `body` is what
    every receiver gets; the id comes from the order and the fact (vult/domain/order_events)."""

    __tablename__ = "order_events"
    __table_args__ = (Index(None, "order_id", "occurred_at"), Index(None, "occurred_at"))

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.order_id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict[str, object]] = mapped_column(JSONB)


class EventDelivery(Base):
    """One event to one target (a webhook endpoint by name, or the customer's e-mail):
    where its delivery stands, for ops (GET /api/ops/events) and the audit."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        CheckConstraint(f"state IN ({_DELIVERY_STATES})", name="state_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(None, "state", "target"),
    )

    event_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("order_events.event_id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_answer: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Each delivery workflow run that tried it (a replay by ops starts another).
    runs: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class WebhookEndpointState(Base):
    """An endpoint the receiver gave up on (410 Gone) stays off until ops enable it."""

    __tablename__ = "webhook_endpoint_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # a declarative class maps one Table
    return table


# The tables themselves, for SQLAlchemy Core statements on the hot paths.
ORDERS = _table(Order)
LINE_ITEMS = _table(LineItem)
PRODUCTS = _table(Product)
ORDER_PAYMENT_INTENTS = _table(OrderPaymentIntent)
ORDER_RETURNS = _table(OrderReturn)
ORDER_EVENTS = _table(OrderEvent)
EVENT_DELIVERIES = _table(EventDelivery)
WEBHOOK_ENDPOINT_STATES = _table(WebhookEndpointState)
