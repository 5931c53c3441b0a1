"""Stripe calls, through one StripeClient built at start-up. Every call that creates or
changes something carries an idempotency key derived from the order and the step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe
from stripe.params import (
    CustomerCreateParams,
    PaymentIntentCaptureParams,
    PaymentIntentCreateParams,
    PaymentIntentListParams,
    PaymentIntentRetrieveParams,
    RefundCreateParams,
)
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


# Stripe saves the answer to a request under its idempotency key, a 5xx too, and replays
# it to every retry with that key; the same key sent with other parameters is refused
# (idempotency_error). So a step that met either reads Stripe's state (the request may
# have done its work before failing) and goes on under the next key of a fixed sequence:
# `key`, `key/fresh-2`, ... (a suffix no step's own key has: `order:...:cancel:<pi>:2` is
# another step's). Every try of the activity walks the same sequence, so a retry whose
# answer was lost (a timeout, not a saved failure) meets its own saved answer, never a
# second request. https://docs.stripe.com/api/idempotent_requests
KEYS_PER_STEP = 4

T = TypeVar("T")


def _key_spent(exc: stripe.StripeError) -> bool:
    """Stripe answered this key once and for all with something other than the result: a
    saved 5xx, or (idempotency_error, 400) a first use with other parameters. A 409
    idempotency_error is a request with the key still running: retried as it is."""
    if isinstance(exc, stripe.IdempotencyError):
        return exc.http_status != 409
    return (exc.http_status or 0) >= 500


async def _under_fresh_keys(
    key: str,
    send: Callable[[str], Awaitable[T]],
    settled: Callable[[], Awaitable[T | None]],
) -> T:
    """`send(key)`; after a spent key, `settled()` (Stripe's state: the result if the work
    was done) and then `send` under the next key. Every key spent: a retryable error
    (Temporal tries the step again later, from the same sequence), never a refusal."""
    for n in range(KEYS_PER_STEP):
        this = key if n == 0 else f"{key}/fresh-{n + 1}"
        if n > 0:
            done = await settled()
            if done is not None:
                return done
        try:
            return await send(this)
        except stripe.StripeError as exc:
            if not _key_spent(exc):
                raise
            activity.logger.warning(
                "Stripe answered key %s with a saved failure (%s): reading its state, then "
                "going on under a fresh key",
                this,
                exc.http_status,
            )
            last = exc
    raise ApplicationError(
        f"Stripe answered every key of {key} with a saved failure (the last: HTTP "
        f"{last.http_status}); tried again later",
        type=Failure.STRIPE_KEYS_SPENT,
    ) from last


class StripeActivities:
    def __init__(self, client: stripe.StripeClient, owner: str) -> None:
        self._client = client
        # Written into the metadata of every PaymentIntent and refund made here: the
        # account is shared, and only PaymentIntents with it (or, made before it existed,
        # of an order we have) are this service's to act on.
        self._owner = owner

    @activity.defn(name="create_payment_intent")
    async def create_payment_intent(self, req: CreatePaymentIntent) -> PaymentIntentInfo:
        """A PaymentIntent for the customer to pay. With `save_card`, its card is kept for an
        authorization later without the customer (a Customer, `setup_future_usage`); with
        `payment_method`, it is that authorization: confirmed at once, off-session, with the
        card saved on `customer` (docs.stripe.com/payments/save-during-payment)."""
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
                payments.ATTEMPT_KEY: req.idempotency_key,
            },
        )
        if req.capture_method != "automatic":
            params["capture_method"] = req.capture_method
        if req.payment_method is not None:
            if req.customer is None:
                # Stripe refuses a card used once without a Customer: nothing to ask.
                raise ApplicationError(
                    "The card of the lapsed authorization was not saved for a later one",
                    type=Failure.PAYMENT_REFUSED,
                    non_retryable=True,
                )
            made = await self._made_for(req.customer, req.idempotency_key)
            if made is not None:  # made before (its answer lost, or a key since forgotten)
                if made.status not in ("requires_capture", "succeeded"):
                    # Declined (or wanting its customer) then: left to nobody, so released.
                    await self._cancel_open(made)
                    raise ApplicationError(
                        f"The card did not authorize again ({made.status})",
                        type=Failure.PAYMENT_REFUSED,
                        non_retryable=True,
                    )
                return _intent_info(made)
            params["customer"] = req.customer
            params["payment_method"] = req.payment_method
            params["confirm"] = True
            params["off_session"] = True
        elif req.save_card:
            params["customer"] = await self._customer_for(req)
            params["setup_future_usage"] = "off_session"

        async def send(key: str) -> stripe.PaymentIntent:
            return await self._client.v1.payment_intents.create_async(
                params=params, options={"idempotency_key": key}
            )

        async def settled() -> stripe.PaymentIntent | None:
            if req.customer is None:
                # Not confirmed: one made under a spent key moves no money, and its client
                # secret never left the service, so nobody can pay it.
                return None
            return await self._made_for(req.customer, req.idempotency_key)

        try:
            intent = await _under_fresh_keys(req.idempotency_key, send, settled)
        except stripe.CardError as exc:
            # The card refused the off-session authorization (declined, or it wants the
            # customer to authenticate): that PaymentIntent is left to nobody, so it is
            # cancelled; the workflow decides what follows for the order.
            await self._cancel_refused(exc)
            raise ApplicationError(
                exc.user_message or str(exc), type=Failure.PAYMENT_REFUSED, non_retryable=True
            ) from exc
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                raise _refusal(exc) from exc
            raise
        return _intent_info(intent)

    async def _customer_for(self, req: CreatePaymentIntent) -> str:
        """The Customer that keeps the order's card for a re-authorization (one per order:
        its key is the order's)."""

        async def send(key: str) -> str:
            customer = await self._client.v1.customers.create_async(
                params=CustomerCreateParams(
                    description=f"Order {req.order_number}",
                    metadata={"order_id": str(req.order_id), payments.OWNER_KEY: self._owner},
                ),
                options={"idempotency_key": key},
            )
            return customer.id

        async def settled() -> str | None:
            return None  # a second Customer for the order holds no money

        try:
            return await _under_fresh_keys(f"order:{req.order_id}:customer", send, settled)
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                raise _refusal(exc) from exc
            raise

    async def _made_for(self, customer: str, key: str) -> stripe.PaymentIntent | None:
        """The customer's PaymentIntent made under `key` (its metadata says so), if Stripe
        has one: a list by customer reads Stripe's state as it is now (unlike search)."""
        listed = await self._client.v1.payment_intents.list_async(
            params=PaymentIntentListParams(customer=customer, limit=100)
        )
        for intent in listed.data:
            if intent.to_dict().get("metadata", {}).get(payments.ATTEMPT_KEY) == key:
                return intent
        return None

    async def _cancel_refused(self, exc: stripe.CardError) -> None:
        refused = exc.error.payment_intent if exc.error is not None else None
        if refused is not None:
            await self._cancel_open(refused)

    async def _cancel_open(self, intent: stripe.PaymentIntent) -> None:
        """Release a renewal the card refused: nobody is there to answer it."""
        if intent.status in ("canceled", "succeeded", "requires_capture"):
            return
        try:
            await self._client.v1.payment_intents.cancel_async(
                intent.id, options={"idempotency_key": f"{intent.id}:cancel-refused"}
            )
        except stripe.StripeError as cancel_exc:
            activity.logger.warning("Could not cancel %s: %s", intent.id, cancel_exc)

    @activity.defn(name="retrieve_payment_intent")
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentSnapshot:
        try:
            found = await self._client.v1.payment_intents.retrieve_async(
                payment_intent_id,
                # The charge says when an authorization lapses (capture_before).
                params=PaymentIntentRetrieveParams(expand=["latest_charge"]),
            )
        except stripe.StripeError as exc:
            if _is_refusal(exc):  # no such PaymentIntent (404): asking again cannot help
                raise _refusal(exc) from exc
            raise
        return _snapshot(found)

    @activity.defn(name="cancel_payment_intent")
    async def cancel_payment_intent(self, req: CancelPaymentIntent) -> PaymentIntentSnapshot:
        """Cancel it if Stripe still can; either way, report where it stands now."""
        pi = req.payment_intent_id

        async def send(key: str) -> PaymentIntentSnapshot:
            cancelled = await self._client.v1.payment_intents.cancel_async(
                pi, options={"idempotency_key": key}
            )
            return _snapshot(cancelled)

        async def settled() -> PaymentIntentSnapshot | None:
            found = await self.retrieve_payment_intent(pi)
            return found if found.status == "canceled" else None

        try:
            return await _under_fresh_keys(req.idempotency_key, send, settled)
        except stripe.StripeError as exc:
            if not _is_refusal(exc):
                raise
            # Refused: it already succeeded, is already canceled, or is mid-charge. The
            # workflow decides what that means, from the PaymentIntent's own status.
            activity.logger.info("Stripe would not cancel %s: %s", pi, exc)
            return await self.retrieve_payment_intent(pi)

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

        async def send(key: str) -> RefundInfo:
            # What is held now: an earlier key's try may have met other amounts.
            held = payments.held(facts)
            amount = held if req.amount is None else min(req.amount, held)
            if amount <= 0:
                return _nothing_held(facts)
            refund = await self._client.v1.refunds.create_async(
                params=RefundCreateParams(
                    payment_intent=req.payment_intent_id,
                    amount=amount,
                    metadata={
                        "order_id": str(req.order_id),
                        payments.OWNER_KEY: self._owner,
                        # The refund's own key, whichever request key made it.
                        payments.REFUND_KEY: req.idempotency_key,
                    },
                ),
                options={"idempotency_key": key},
            )
            return _refund_info(refund)

        async def settled() -> RefundInfo | None:
            nonlocal facts
            facts = await self.read_charge(req.payment_intent_id)
            return payments.our_refund(facts, req.idempotency_key)

        try:
            return await _under_fresh_keys(req.idempotency_key, send, settled)
        except stripe.StripeError as exc:
            if _is_refusal(exc):
                raise _refusal(exc) from exc
            raise

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

        async def send(key: str) -> PaymentIntentSnapshot:
            captured = await self._client.v1.payment_intents.capture_async(
                req.payment_intent_id,
                params=PaymentIntentCaptureParams(amount_to_capture=req.amount),
                options={"idempotency_key": key},
            )
            return _snapshot(captured)

        async def settled() -> PaymentIntentSnapshot | None:
            found = await self.retrieve_payment_intent(req.payment_intent_id)
            return found if found.status == "succeeded" else None

        try:
            return await _under_fresh_keys(req.idempotency_key, send, settled)
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


def _intent_info(intent: stripe.PaymentIntent) -> PaymentIntentInfo:
    if not intent.client_secret:
        raise ApplicationError("Stripe returned a PaymentIntent without a client secret")
    return PaymentIntentInfo(
        payment_intent_id=intent.id,
        client_secret=intent.client_secret,
        amount=intent.amount,
        currency=intent.currency,
    )


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
        customer=_id_of(intent.get("customer")),
        latest_charge=_id_of(intent.get("latest_charge")),
        capture_before=_capture_before(intent) if intent["status"] == "requires_capture" else None,
    )


def _capture_before(intent: dict[str, Any]) -> datetime | None:
    """When the authorization lapses: the charge's payment_method_details.card.capture_before
    (the PaymentIntent read with its latest_charge expanded)."""
    charge = intent.get("latest_charge")
    details = charge.get("payment_method_details") if isinstance(charge, dict) else None
    card = details.get("card") if isinstance(details, dict) else None
    when = card.get("capture_before") if isinstance(card, dict) else None
    return datetime.fromtimestamp(when, UTC) if isinstance(when, int) else None


def _id_of(reference: object) -> str | None:
    if isinstance(reference, dict):
        found = reference.get("id")
        return found if isinstance(found, str) else None
    return reference if isinstance(reference, str) else None
