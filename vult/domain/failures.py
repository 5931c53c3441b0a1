"""Why a step failed, as the workflow, the activities and the API name it: the `type` of
the ApplicationError that carries it."""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    INVALID_ORDER = "InvalidOrder"  # details[0]: list of messages; never retried
    STATUS_CONFLICT = "StatusConflict"  # the row is not in a status the change expects
    STATUS_REFUSED = "StatusRefused"  # the database refused the change's data; never retried
    PAYMENT_REFUSED = "PaymentRefused"  # Stripe refused the request itself (not a network fault)
    ORDER_NOT_FOUND = "OrderNotFound"
    INVALID_TRANSITION = "InvalidTransition"
    PAYMENT_UNAVAILABLE = "PaymentUnavailable"  # Stripe could not be reached after retries
    REFUND_FAILED = "RefundFailed"  # Stripe reported a refund failed: the money is still owed
    DISPUTED = "PaymentDisputed"
    # The cancellation is recorded, and waits for the payment being processed to settle:
    # the workflow completes it (202 at the API).
    CANCEL_RECORDED = "CancelRecorded"
    # Stripe refused the service's own API key (401/403: rotated, revoked, or a restricted
    # key without the permission): a configuration error, for ops, never the customer's.
    STRIPE_KEY_REFUSED = "StripeKeyRefused"
    # Every idempotency key of a step met a failure Stripe keeps under it (a saved 5xx, or
    # the key first used with other parameters): retried later, never taken as a refusal.
    STRIPE_KEYS_SPENT = "StripeKeysSpent"
