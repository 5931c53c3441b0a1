"""An Idempotency-Key names one order for 24 hours, then is free again (as Stripe keeps
keys): the order id is derived from the key and the 24-hour period, and a retry in the next
period finds the earlier order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.order_commands import KEY_LIFETIME, key_order_ids, order_id_for_key

T0 = datetime(2026, 11, 27, 23, 59, 30, tzinfo=UTC)


def test_a_key_names_the_same_order_within_a_period() -> None:
    assert key_order_ids("k", T0)[0] == key_order_ids("k", T0 - timedelta(hours=1))[0]
    assert key_order_ids("k", T0)[0] != key_order_ids("other", T0)[0]


def test_a_retry_across_the_periods_boundary_finds_the_earlier_order() -> None:
    first, _ = key_order_ids("k", T0)
    _, previous = key_order_ids("k", T0 + timedelta(minutes=1))  # just past midnight
    assert previous == first


def test_the_earlier_order_is_the_one_when_it_is_younger_than_24_hours() -> None:
    later = T0 + timedelta(hours=3)
    current, previous = key_order_ids("k", later)
    assert order_id_for_key((current, previous), later, previous_created=T0) == previous
    assert order_id_for_key((current, previous), later, previous_created=None) == current
    too_old = later - KEY_LIFETIME - timedelta(minutes=1)
    assert order_id_for_key((current, previous), later, previous_created=too_old) == current
