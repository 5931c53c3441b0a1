"""Timeouts and retry policies for the order workflow's activities, in one place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# Short PostgreSQL writes run as local activities: no extra server round trip each.
# Creating the order is bounded by what a customer waiting on HTTP will accept.
CREATE_ORDER: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5)),
)
# A status write must land: it retries through a database outage of up to an hour.
DB_WRITE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(hours=1),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
# Stripe calls the customer waits on: a few quick tries, then a clear error.
STRIPE_INTERACTIVE: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=20),
    schedule_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=5),
)
# Stripe calls nobody waits on (reading a PaymentIntent back, refunds): bounded well inside
# the 24 hours for which Stripe honours an idempotency key.
STRIPE_BACKGROUND: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=2),
    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=2)),
)
