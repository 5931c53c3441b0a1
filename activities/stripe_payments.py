"""Stripe calls, through one StripeClient built at start-up. Every call that creates or
changes something carries an idempotency key derived from the order and the step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from vult.domain.contracts import (
    CancelPaymentIntent,
    CreatePaymentIntent,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
    RefundInfo,
    RefundPayment,
)
from vult.domain.failures import Failure


def _refusal(exc: stripe.StripeError) -> ApplicationError:
    """Stripe answered and said no: retrying the same request cannot help."""
    message = exc.user_message or "Stripe refused the request"
    return ApplicationError(message, type=Failure.PAYMENT_REFUSED, non_retryable=True)


def _is_refusal(exc: stripe.StripeError) -> bool:
    # 4xx other than 409 (idempotency race) and 429 (rate limit) will not change on retry.
    status = exc.http_status or 0
    return 400 <= status < 500 and status not in (409, 429)


class StripeActivities:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def all(self) -> list[Callable[..., Awaitable[object]]]:
        """Every activity, for the worker to register."""
        return [
            self.create_payment_intent,
            self.retrieve_payment_intent,
            self.cancel_payment_intent,
            self.refund_payment,
            self.retrieve_refund,
        ]

    @activity.defn(name="create_payment_intent")
    async def create_payment_intent(self, req: CreatePaymentIntent) -> PaymentIntentInfo:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": req.amount,
                    "currency": req.currency.lower(),
                    # stripe 16's PaymentIntentCreateParams lacks this key, which the API
                    # (and the emulator) take: a gap in the library's types.
                    "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
                    "metadata": {
                        "order_id": str(req.order_id),
                        "order_number": req.order_number,
                    },
                },
                options={"idempotency_key": req.idempotency_key},
            )
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                raise _refusal(exc) from exc
            raise
        if not intent.client_secret:
            raise ApplicationError("Stripe returned a PaymentIntent without a client secret")
        return PaymentIntentInfo(
            payment_intent_id=intent.id,
            client_secret=intent.client_secret,
            amount=intent.amount,
            currency=intent.currency,
        )

    @activity.defn(name="retrieve_payment_intent")
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentSnapshot:
        try:
            found = await self._client.v1.payment_intents.retrieve_async(payment_intent_id)
        except stripe.StripeError as exc:
            if _is_refusal(exc):  # no such PaymentIntent (404): asking again cannot help
                raise _refusal(exc) from exc
            raise
        return _snapshot(found)

    @activity.defn(name="cancel_payment_intent")
    async def cancel_payment_intent(self, req: CancelPaymentIntent) -> PaymentIntentSnapshot:
        """Cancel it if Stripe still can; either way, report where it stands now."""
        try:
            cancelled = await self._client.v1.payment_intents.cancel_async(
                req.payment_intent_id, options={"idempotency_key": req.idempotency_key}
            )
        except stripe.StripeError as exc:
            if not _is_refusal(exc):
                raise
            # Refused: it already succeeded, is already canceled, or is mid-charge. The
            # workflow decides what that means, from the PaymentIntent's own status.
            activity.logger.info("Stripe would not cancel %s: %s", req.payment_intent_id, exc)
            return await self.retrieve_payment_intent(req.payment_intent_id)
        return _snapshot(cancelled)

    @activity.defn(name="refund_payment")
    async def refund_payment(self, req: RefundPayment) -> RefundInfo:
        """A full refund of the PaymentIntent's charge, once: a refund Stripe already holds
        for it is returned instead of a second one (whoever asked for it and however long
        ago), and the key makes a retry of this call the same refund."""
        existing = await self._live_refund(req.payment_intent_id)
        if existing is not None:
            return existing
        try:
            refund = await self._client.v1.refunds.create_async(
                params={
                    "payment_intent": req.payment_intent_id,
                    "metadata": {"order_id": str(req.order_id)},
                },
                options={"idempotency_key": req.idempotency_key},
            )
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                raise _refusal(exc) from exc
            raise
        return _refund_info(refund)

    async def _live_refund(self, payment_intent_id: str) -> RefundInfo | None:
        try:
            found = await self._client.v1.refunds.list_async(
                params={"payment_intent": payment_intent_id, "limit": 10}
            )
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                return None  # nothing charged to refund yet: the create says why
            raise
        for refund in found.data:
            info = _refund_info(refund)
            if info.status not in ("failed", "canceled"):
                return info
        return None

    @activity.defn(name="retrieve_refund")
    async def retrieve_refund(self, refund_id: str) -> RefundInfo:
        return _refund_info(await self._client.v1.refunds.retrieve_async(refund_id))


def _refund_info(found: stripe.Refund) -> RefundInfo:
    data = found.to_dict()
    return RefundInfo(
        refund_id=data["id"],
        status=data.get("status") or "pending",
        amount=data["amount"],
        currency=data["currency"],
    )


def _snapshot(found: stripe.PaymentIntent) -> PaymentIntentSnapshot:
    intent = found.to_dict()
    error = intent.get("last_payment_error") or {}
    return PaymentIntentSnapshot(
        payment_intent_id=intent["id"],
        status=intent["status"],
        amount=intent["amount"],
        # Not every Stripe version (nor the emulator) reports amount_received.
        amount_received=intent.get("amount_received") or 0,
        currency=intent["currency"],
        last_error_message=error.get("message"),
        order_id=(intent.get("metadata") or {}).get("order_id"),
    )
