"""Which orders can still change (and so need a running workflow): the rule the sweep, the
resume activity and the API's commands share (vult/domain/status.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vult.domain.status import may_still_change, returns_open

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)


def test_a_delivered_order_takes_returns_until_its_window_closes() -> None:
    assert returns_open(NOW - WINDOW + timedelta(seconds=1), WINDOW, NOW)
    assert not returns_open(NOW - WINDOW, WINDOW, NOW)
    assert not returns_open(None, WINDOW, NOW)  # delivered before the window existed


@pytest.mark.parametrize(
    "status,payment,note,open_,expected",
    [
        ("Pending", None, None, False, True),
        ("Shipped", "succeeded", None, False, True),
        ("Delivered", "succeeded", None, True, True),
        ("Delivered", "succeeded", None, False, False),
        ("Cancelled", "refund_pending", None, False, True),
        ("Cancelled", "refunded", None, False, False),
        ("Cancelled", None, None, False, False),
        ("Cancelled", "refund_failed", "paid back by bank transfer", False, False),
    ],
)
def test_what_can_still_change(
    status: str, payment: str | None, note: str | None, open_: bool, expected: bool
) -> None:
    assert may_still_change(status, payment, note, open_) is expected
