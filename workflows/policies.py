"""Timeouts and retry policies for the order workflow's activities, in one place, typed
with the SDK's own config types."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig, LocalActivityConfig

# Short PostgreSQL writes run as local activities: no extra server round trip each.
# Creating the order is bounded by what a customer waiting on HTTP will accept.
CREATE_ORDER = LocalActivityConfig(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5)),
)
# A status write must land: it retries through a database outage of ten minutes; a longer
# one parks the order (workflows/attention.py), which tries again by itself later. Short
# bounds keep the workflow's lock from being held through a long outage.
DB_WRITE = LocalActivityConfig(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
# Stripe calls the customer waits on: a few quick tries, then a clear error.
_INTERACTIVE_START_TO_CLOSE = timedelta(seconds=20)
_INTERACTIVE_SCHEDULE_TO_CLOSE = timedelta(seconds=60)
_INTERACTIVE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=5)
STRIPE_INTERACTIVE = LocalActivityConfig(
    start_to_close_timeout=_INTERACTIVE_START_TO_CLOSE,
    schedule_to_close_timeout=_INTERACTIVE_SCHEDULE_TO_CLOSE,
    retry_policy=_INTERACTIVE_RETRY,
)
# The same bound for a regular activity (cancelling an older PaymentIntent before a new one).
STRIPE_INTERACTIVE_CALL = ActivityConfig(
    start_to_close_timeout=_INTERACTIVE_START_TO_CLOSE,
    schedule_to_close_timeout=_INTERACTIVE_SCHEDULE_TO_CLOSE,
    retry_policy=_INTERACTIVE_RETRY,
)
# Stripe calls nobody waits on (reading a PaymentIntent back, refunds): ten minutes of
# retries, then the order is parked and tried again later, well inside the 24 hours for
# which Stripe honours an idempotency key. Reads on the hot path run as local activities,
# the rarer cancel and refund calls as regular ones; same bounds.
_BACKGROUND_START_TO_CLOSE = timedelta(seconds=30)
_BACKGROUND_SCHEDULE_TO_CLOSE = timedelta(minutes=10)
_BACKGROUND_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=2))
STRIPE_BACKGROUND = ActivityConfig(
    start_to_close_timeout=_BACKGROUND_START_TO_CLOSE,
    schedule_to_close_timeout=_BACKGROUND_SCHEDULE_TO_CLOSE,
    retry_policy=_BACKGROUND_RETRY,
)
STRIPE_READ = LocalActivityConfig(
    start_to_close_timeout=_BACKGROUND_START_TO_CLOSE,
    schedule_to_close_timeout=_BACKGROUND_SCHEDULE_TO_CLOSE,
    retry_policy=_BACKGROUND_RETRY,
)
# The no-op that ends an update's accepting workflow task before the update acts
# (workflows/order.py, `_accepted`). Scheduling it is what counts: the task that schedules it
# is recorded with the acceptance. So it is tried once and waited for a short while only:
# with every activity slot of the worker held (slow Stripe calls) it times out, and the
# update acts then, instead of waiting behind another order's refund.
ACCEPT = ActivityConfig(
    schedule_to_close_timeout=timedelta(seconds=2),
    retry_policy=RetryPolicy(maximum_attempts=1),
)
# Resuming an order whose workflow is gone (a database read, a Stripe read, a start at
# Temporal): retried for a few minutes; past that the next sweep tries again.
RESUME = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
# One try of an order event's delivery (activities/event_delivery.py), a local activity on
# the deliveries' own task queue (their own slots: worker.py): the try bounds
# itself (WEBHOOK_TIMEOUT_SECONDS, SMTP_TIMEOUT_SECONDS); what Temporal retries is a try
# whose record failed (the database away) or whose worker died, 8 times over about half an
# hour; past that the workflow counts it as a failed try and waits for the next.
DELIVERY_TRY = LocalActivityConfig(
    start_to_close_timeout=timedelta(minutes=3),
    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=8),
)
# The sweep's start of deliveries whose start was lost: one read, a few starts.
START_PENDING_DELIVERIES = ActivityConfig(
    start_to_close_timeout=timedelta(minutes=1),
    schedule_to_close_timeout=timedelta(minutes=3),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
# Finding them: one read of the open orders, one listing of the running workflows.
FIND_ORPHANS = ActivityConfig(
    start_to_close_timeout=timedelta(minutes=2),
    schedule_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
