"""The HTTP wire contract (spec 5.1), serialized as ASP.NET Core does by default:
camelCase names, decimals as JSON numbers, statuses by name, timestamps in ISO 8601 UTC."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StrictInt,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from vult.domain.text import UNSTORABLE, is_storable_line

# A JSON number on the wire. Amounts are numeric(18,2) and far below 2**53 cents, so the
# double a JavaScript client parses them into is exact to the cent.
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, str_strip_whitespace=True
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        if isinstance(value, str) and not is_storable_line(value):
            raise PydanticCustomError("unstorable_text", UNSTORABLE)
        return value


def _text(max_length: int) -> object:
    return Field(min_length=1, max_length=max_length)


class AddressDto(WireModel):
    """ShippingAddressDto and BillingAddressDto share one shape."""

    full_name: Annotated[str, _text(200)]
    address_line1: Annotated[str, _text(500)]
    address_line2: Annotated[str | None, Field(max_length=500)] = None
    city: Annotated[str, _text(100)]
    state: Annotated[str, _text(100)]
    postal_code: Annotated[str, _text(20)]
    country: Annotated[str, _text(100)]
    phone: Annotated[str | None, Field(max_length=50)] = None


MAX_QUANTITY = 1000
MAX_LINE_ITEMS = 100


class CreateLineItemDto(WireModel):
    product_id: uuid.UUID
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
    size: Annotated[str | None, Field(max_length=50)] = None


class CreateOrderDto(WireModel):
    customer_email: Annotated[EmailStr, Field(max_length=256)]
    shipping_address: AddressDto
    billing_address: AddressDto | None = None
    line_items: Annotated[list[CreateLineItemDto], Field(min_length=1, max_length=MAX_LINE_ITEMS)]


class LineItemDto(WireModel):
    line_item_id: uuid.UUID
    product_id: uuid.UUID
    product_name: str
    product_size: str | None
    product_image_url: str | None
    unit_price: Money
    quantity: int
    sub_total: Money
    # Beyond the seed's (additive): how many shipped (null until the order ships) and,
    # of those, were returned.
    quantity_shipped: int | None = None
    quantity_returned: int = 0


class LineQuantityDto(WireModel):
    line_item_id: uuid.UUID
    quantity: Annotated[int, Field(ge=1, le=1000)]


class ReturnDto(WireModel):
    """A return ops took: its Idempotency-Key, what was refunded, the refund at Stripe."""

    return_key: str
    reason: str
    amount: Money
    line_items: list[LineQuantityDto] = []
    refund_id: str | None = None
    refund_status: str | None = None
    created_date: datetime


class OrderDto(WireModel):
    order_id: uuid.UUID
    order_number: str
    customer_email: str
    status: str
    sub_total: Money
    tax: Money
    shipping_cost: Money
    total: Money
    currency: str
    shipping_address: AddressDto
    billing_address: AddressDto | None
    line_items: list[LineItemDto]
    created_date: datetime
    updated_date: datetime
    # Beyond the seed's DTO (additive, so existing clients are unaffected): why the last
    # payment attempt failed, why the order was cancelled, and where it is being shipped.
    payment_error_message: str | None = None
    cancellation_reason: str | None = None
    shipping_carrier: str | None = None
    tracking_number: str | None = None
    # Stripe's side as last recorded: succeeded, failed, canceled, refunded, refund_pending,
    # partially_refunded, disputed (a dispute open), dispute_lost, requires_action...
    payment_status: str | None = None
    # Stripe's amounts, whoever moved the money: refunded so far (every refund that has not
    # failed, the Dashboard's included), and a dispute's status (open, or won / lost).
    amount_refunded: Money = Decimal("0.00")
    dispute_status: str | None = None
    # What ops noted when they resolved a problem by hand (POST /api/ops/orders/{id}/resolve).
    resolution_note: str | None = None
    # When the order's workflow was last resumed after its previous run ended while the
    # order could still change (terminated from the Web UI, say); null if never.
    resumed_at: datetime | None = None
    # Capture at shipment: what was captured when it shipped (null before, or with
    # automatic capture); returns taken, oldest first.
    amount_captured: Money | None = None
    returns: list[ReturnDto] = []
    # The mail server refused the customer's address for good (its answer): no more
    # e-mails are tried for this order (docs/events.md).
    customer_email_refused: str | None = None


class PaymentIntentDto(WireModel):
    client_secret: str
    payment_intent_id: str
    amount: int
    currency: str


class ProductDto(WireModel):
    product_id: uuid.UUID
    name: str
    size: str | None
    estimated_msrp: Annotated[Money, Field(alias="estimatedMSRP")]
    image_urls: list[str]


class ResolveOrderDto(WireModel):
    note: Annotated[str, _text(1000)]


class CancelOrderDto(WireModel):
    reason: Annotated[str, _text(500)]


class ShipOrderDto(WireModel):
    carrier: Annotated[str, _text(100)]
    tracking_number: Annotated[str, _text(100)]
    # The lines shipped; omitted: everything (the rest of a partial shipment never ships:
    # released, or refunded with automatic capture).
    line_items: Annotated[list[LineQuantityDto] | None, Field(min_length=1, max_length=100)] = None


class CreateReturnDto(WireModel):
    """Lines back (their share of the total, no shipping) or an amount, with a reason."""

    reason: Annotated[str, _text(500)]
    line_items: Annotated[list[LineQuantityDto] | None, Field(min_length=1, max_length=100)] = None
    amount: Annotated[Money | None, Field(gt=0, le=Decimal("999999.99"), decimal_places=2)] = None


class OrderSummaryDto(WireModel):
    order_id: uuid.UUID
    order_number: str
    customer_email: str
    status: str
    total: Money
    currency: str
    created_date: datetime
    updated_date: datetime
    # When the order's workflow was last resumed after ending early (null if never).
    resumed_at: datetime | None = None


class OrderPageDto(WireModel):
    items: list[OrderSummaryDto]
    page: int
    page_size: int
    total_count: int


class ErrorsResponse(BaseModel):
    errors: list[str]


class ErrorResponse(BaseModel):
    error: str


class RefusedResponse(WireModel):
    """429 (this client has too many open) or 503 (the service is busy, or an outcome is
    not known yet), with a Retry-After header. `outcomeKnown: true`: nothing was done, the
    same request (with the same Idempotency-Key) may be sent again after Retry-After."""

    error: str
    outcome_known: bool


class AcceptedResponse(BaseModel):
    """202: the command is recorded, and the workflow completes it (read the order, or
    wait for its status-change, for the outcome)."""

    message: str


# ---- Order events and their deliveries (ops; docs/events.md) --------------------------


class DeliveryDto(WireModel):
    """One event to one target (a webhook endpoint's name, or `email`)."""

    target: str
    state: str  # pending, failing, delivered, failed, refused, disabled
    attempts: int
    runs: int  # 1, and one more for each time ops sent it again
    last_status: int | None = None
    last_answer: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class OrderEventDto(WireModel):
    event_id: str
    type: str
    order_id: uuid.UUID
    order_number: str
    occurred_at: datetime
    deliveries: list[DeliveryDto] = []
    body: dict[str, object] | None = None  # what every receiver got (one event's read)


class OrderEventPageDto(WireModel):
    events: list[OrderEventDto]
    # More match: ask again with `until` and `untilEventId` set to these (where this page
    # ended).
    next_until: datetime | None = None
    next_until_event_id: str | None = None


class RedeliverDto(WireModel):
    """Send one event again: to one target, or (none named) to every one it went to."""

    target: Annotated[str | None, Field(max_length=100)] = None


class RedeliverRangeDto(WireModel):
    """Send again the events of a time range (at most 500), optionally only one type, one
    target, or the deliveries in one state (`failed`, say)."""

    since: AwareDatetime
    until: AwareDatetime
    type: Annotated[str | None, Field(max_length=50)] = None
    target: Annotated[str | None, Field(max_length=100)] = None
    state: Annotated[str | None, Field(max_length=20)] = None


class RedeliveredDto(WireModel):
    """The delivery workflows started (their ids, for the Web UI)."""

    started: list[str]


class WebhookEndpointDto(WireModel):
    name: str
    url: str  # without its query, which may carry a token
    events: list[str]
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    failing: int = 0  # deliveries being tried again
    failed: int = 0  # deliveries whose tries ran out
