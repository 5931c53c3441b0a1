"""Stripe calls, through one StripeClient built at start-up. Every call that creates or
changes something carries an idempotency key derived from the order and the step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import stripe
from stripe.params import PaymentIntentCreateParams
from temporalio import activity
from temporalio.exceptions import ApplicationError

from vult.domain import payments
from vult.domain.contracts import (
    CancelPaymentIntent,
    CapturePayment,
    ChargeFacts,
    CreatePaymentIntent,
    DisputeInfo,
    PaymentIntentInfo,
    PaymentIntentSnapshot,
    RefundInfo,
    RefundPayment,
)
from vult.domain.failures import Failure


def _refusal(exc: stripe.StripeError) -> ApplicationError:
    """Stripe answered and said no: retrying the same request cannot help. Refusing our
    own key (401, 403) is a configuration error for ops, never the customer's refusal."""
    if exc.http_status in (401, 403):
        return ApplicationError(
            f"Stripe refused this service's API key (HTTP {exc.http_status}): a configuration "
            "error. Check STRIPE_SECRET_KEY (rotated or revoked?) and, for a restricted key, "
            "its permissions; then retry",
            type=Failure.STRIPE_KEY_REFUSED,
            non_retryable=True,
        )
    message = exc.user_message or "Stripe refused the request"
    return ApplicationError(message, type=Failure.PAYMENT_REFUSED, non_retryable=True)


def _is_refusal(exc: stripe.StripeError) -> bool:
    # 4xx other than 409 (idempotency race) and 429 (rate limit) will not change on retry.
    status = exc.http_status or 0
    return 400 <= status < 500 and status not in (409, 429)


class StripeActivities:
    def __init__(self, client: stripe.StripeClient, owner: str) -> None:
        self._client = client
        # Written into the metadata of every PaymentIntent and refund made here: the
        # account is shared, and only PaymentIntents with it (or, made before it existed,
        # of an order we have) are this service's to act on.
        self._owner = owner

    def all(self) -> list[Callable[..., Awaitable[object]]]:
        """Every activity, for the worker to register."""
        return [
            self.create_payment_intent,
            self.retrieve_payment_intent,
            self.cancel_payment_intent,
            self.refund_payment,
            self.retrieve_refund,
            self.read_charge,
            self.capture_payment,
        ]

    @activity.defn(name="create_payment_intent")
    async def create_payment_intent(self, req: CreatePaymentIntent) -> PaymentIntentInfo:
        """A PaymentIntent for the customer to pay; with `payment_method`, one confirmed at
        once off-session with that card (a re-authorization: capture at shipment)."""
        params = PaymentIntentCreateParams(
            amount=req.amount,
            currency=req.currency.lower(),
            # Cards only: the checkout page collects a card with Stripe.js's Card Element
            # (confirmCardPayment), which can present no other payment method. At the pinned
            # API version `payment_method_types` is refused (docs/adr/0001-card-payments.md).
            allowed_payment_method_types=["card"],
            metadata={
                "order_id": str(req.order_id),
                "order_number": req.order_number,
                payments.OWNER_KEY: self._owner,
            },
        )
        if req.capture_method != "automatic":
            params["capture_method"] = req.capture_method
        if req.payment_method is not None:
            params["payment_method"] = req.payment_method
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params=params, options={"idempotency_key": req.idempotency_key}
            )
            if req.payment_method is not None and intent.status == "requires_confirmation":
                intent = await self._client.v1.payment_intents.confirm_async(
                    intent.id, options={"idempotency_key": f"{req.idempotency_key}:confirm"}
                )
        except stripe.CardError as exc:
            # The card refused the re-authorization: the workflow decides what follows.
            raise ApplicationError(
                exc.user_message or str(exc), type=Failure.PAYMENT_REFUSED, non_retryable=True
            ) from exc
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
        """Refund what is still held of the PaymentIntent's charge (or `req.amount`, never
        more than is held), once: the refund this service made under the same key is
        returned instead of a second one, and the key makes a retry at Stripe the same
        refund. Refunds others made count against what is held, never as ours. A disputed
        charge is never refunded (Stripe refuses it for ever): that is refused here."""
        facts = await self.read_charge(req.payment_intent_id)
        existing = payments.our_refund(facts, req.idempotency_key)
        if existing is not None:
            return existing
        if payments.refund_blocked(facts):
            raise ApplicationError(
                payments.refused_while_disputed(req.payment_intent_id),
                type=Failure.DISPUTED,
                non_retryable=True,
            )
        held = payments.held(facts)
        amount = held if req.amount is None else min(req.amount, held)
        if amount <= 0:
            return _nothing_held(facts)
        try:
            refund = await self._client.v1.refunds.create_async(
                params={
                    "payment_intent": req.payment_intent_id,
                    "amount": amount,
                    "metadata": {
                        "order_id": str(req.order_id),
                        payments.OWNER_KEY: self._owner,
                        payments.REFUND_KEY: req.idempotency_key,
                    },
                },
                options={"idempotency_key": req.idempotency_key},
            )
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                raise _refusal(exc) from exc
            raise
        return _refund_info(refund)

    @activity.defn(name="read_charge")
    async def read_charge(self, payment_intent_id: str) -> ChargeFacts:
        """Stripe's amounts for the PaymentIntent: captured, refunded (every refund not
        failed, whoever made it) and disputed (a read: safe to repeat)."""
        try:
            intent = (
                await self._client.v1.payment_intents.retrieve_async(payment_intent_id)
            ).to_dict()
            charge_ref = intent.get("latest_charge")
            charge_id = charge_ref.get("id") if isinstance(charge_ref, dict) else charge_ref
            if not charge_id:
                return ChargeFacts(payment_intent_id=payment_intent_id, currency=intent["currency"])
            charge = (await self._client.v1.charges.retrieve_async(charge_id)).to_dict()
            refunds = await self._client.v1.refunds.list_async(
                params={"payment_intent": payment_intent_id, "limit": 100}
            )
            disputes = await self._client.v1.disputes.list_async(
                params={"payment_intent": payment_intent_id, "limit": 10}
            )
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                raise _refusal(exc) from exc
            raise
        listed = [_refund_info(r) for r in refunds.data]
        return ChargeFacts(
            payment_intent_id=payment_intent_id,
            currency=charge["currency"],
            amount_capturable=_capturable(intent, charge),
            amount_captured=_captured(charge),
            amount_refunded=sum(r.amount for r in listed if r.status not in payments.DEAD_REFUND),
            refunds=listed,
            dispute=_dispute_info(disputes.data[0].to_dict()) if disputes.data else None,
        )

    @activity.defn(name="capture_payment")
    async def capture_payment(self, req: CapturePayment) -> PaymentIntentSnapshot:
        """Capture `req.amount` of an authorized PaymentIntent (capture at shipment); the
        rest of the authorization is released. Captured already (a retry): where it stands.
        Refused (the authorization lapsed, the card declined): PaymentRefused."""
        try:
            captured = await self._client.v1.payment_intents.capture_async(
                req.payment_intent_id,
                params={"amount_to_capture": req.amount},
                options={"idempotency_key": req.idempotency_key},
            )
        except stripe.StripeError as exc:
            if not _is_refusal(exc):
                raise
            found = await self.retrieve_payment_intent(req.payment_intent_id)
            if found.status == "succeeded":
                return found  # captured by an earlier try whose answer was lost
            raise ApplicationError(
                f"Stripe refused to capture {req.payment_intent_id} ({found.status}): {exc}",
                type=Failure.PAYMENT_REFUSED,
                non_retryable=True,
            ) from exc
        return _snapshot(captured)

    @activity.defn(name="retrieve_refund")
    async def retrieve_refund(self, refund_id: str) -> RefundInfo:
        return _refund_info(await self._client.v1.refunds.retrieve_async(refund_id))


def _refund_info(found: stripe.Refund) -> RefundInfo:
    data = found.to_dict()
    key = (data.get("metadata") or {}).get(payments.REFUND_KEY)
    return RefundInfo(
        refund_id=data["id"],
        status=data.get("status") or "pending",
        amount=data["amount"],
        currency=data["currency"],
        key=key if isinstance(key, str) else None,
    )


def _nothing_held(facts: ChargeFacts) -> RefundInfo:
    """Nothing is left to refund: the newest live refund (whoever made it) says how the
    money went back. With none, nothing was captured: Stripe would refuse the refund."""
    live = [r for r in facts.refunds if r.status not in payments.DEAD_REFUND]
    if live:
        return live[0]
    raise ApplicationError(
        f"Nothing of {facts.payment_intent_id} is held to refund",
        type=Failure.PAYMENT_REFUSED,
        non_retryable=True,
    )


def _captured(charge: dict[str, object]) -> int:
    # Stripe reports amount_captured; the emulator only whether the charge was captured.
    captured = charge.get("amount_captured")
    if isinstance(captured, int):
        return captured
    amount = charge.get("amount")
    paid = charge.get("captured") and charge.get("status") == "succeeded"
    return amount if paid and isinstance(amount, int) else 0


def _capturable(intent: dict[str, object], charge: dict[str, object]) -> int:
    """An authorization not captured yet: Stripe's amount_capturable (the emulator says
    only that the charge succeeded uncaptured)."""
    if intent.get("status") != "requires_capture":
        return 0
    capturable = intent.get("amount_capturable")
    if isinstance(capturable, int) and capturable > 0:
        return capturable
    amount = charge.get("amount")
    return amount if isinstance(amount, int) else 0


def _dispute_info(data: dict[str, object]) -> DisputeInfo:
    details = data.get("evidence_details")
    due = details.get("due_by") if isinstance(details, dict) else None
    amount = data.get("amount")
    return DisputeInfo(
        dispute_id=str(data["id"]),
        status=str(data.get("status") or "needs_response"),
        amount=amount if isinstance(amount, int) else 0,
        reason=str(data.get("reason") or ""),
        evidence_due_by=datetime.fromtimestamp(due, UTC) if isinstance(due, int) else None,
        is_charge_refundable=data.get("is_charge_refundable") is True,
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
        owner=(intent.get("metadata") or {}).get(payments.OWNER_KEY),
        payment_method=_id_of(intent.get("payment_method")),
        amount_capturable=(intent.get("amount_capturable") or 0)
        if intent["status"] == "requires_capture"
        else 0,
    )


def _id_of(reference: object) -> str | None:
    if isinstance(reference, dict):
        found = reference.get("id")
        return found if isinstance(found, str) else None
    return reference if isinstance(reference, str) else None
