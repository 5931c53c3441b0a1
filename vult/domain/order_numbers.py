"""Order numbers (spec 3.3): VLT-yyyyMMdd-NNNNNN, the date in UTC. Uniqueness is the
database's to check; a clash draws another number."""

from __future__ import annotations

import random
from datetime import datetime

ORDER_NUMBER_PREFIX = "VLT"
ORDER_NUMBER_MIN = 100000
ORDER_NUMBER_MAX = 999999  # exclusive, as .NET's Random.Next(100000, 999999)


def is_order_number_of(number: str, moment: datetime) -> bool:
    """Whether `number` carries the date (UTC) of `moment`."""
    return number.startswith(f"{ORDER_NUMBER_PREFIX}-{moment.strftime('%Y%m%d')}-")


def draw_order_number(moment: datetime) -> str:
    """A new number for an order placed at `moment`."""
    return format_order_number(moment, random.randrange(ORDER_NUMBER_MIN, ORDER_NUMBER_MAX))


def format_order_number(moment: datetime, serial: int) -> str:
    """VLT-yyyyMMdd-NNNNNN, the date in UTC."""
    if not ORDER_NUMBER_MIN <= serial < ORDER_NUMBER_MAX:
        raise ValueError(f"order number serial {serial} out of range")
    return f"{ORDER_NUMBER_PREFIX}-{moment.strftime('%Y%m%d')}-{serial}"
