"""What every receiver of an order event gets (docs/events.md): the event's id, type and
time, the order's id and number, the order as GET /api/orders/{id} serves it, and what only
this kind of event says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vult.domain.contracts import EmittedEvent
from vult.wire.schemas import OrderDto


def event_body(event: EmittedEvent, order: OrderDto) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "type": event.type,
        "timestamp": iso(event.at),
        "orderId": str(order.order_id),
        "orderNumber": order.order_number,
        "data": order.model_dump(mode="json", by_alias=True),
        "detail": event.detail,
    }


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
