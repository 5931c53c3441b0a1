"""What every action of one order's workflow works on: the order, its state (owned by the
workflow, workflows/order.py, which runs one action at a time under its lock), its timing
and how the order was placed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from vult.domain.contracts import OrderState, OrderTiming


@dataclass(frozen=True)
class OrderContext:
    order_id: uuid.UUID
    state: OrderState
    timing: OrderTiming
    index_for_search: bool  # whether the order's search attributes are kept up to date
    capture: str = "automatic"  # PAYMENT_CAPTURE when the order was placed
    # Whether this run tells its facts as order events (a run begun on 1.1 or later;
    # workflows/order_actions/events.py).
    emits_events: bool = False
