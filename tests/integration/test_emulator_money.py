"""The emulator's refunds and disputes are as strict as Stripe's at the pinned API version
(dev/stack/stripe_refunds.py, dev/stack/stripe_disputes.py), seen through the official SDK:
refunds that stay pending or fail later, the charge's `amount_refunded` following them,
every dispute status the SDK names, inquiries that leave the charge refundable, and
chargebacks that do not."""

from __future__ import annotations

import asyncio
import typing
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

from dev.stack.stripe_refunds import SETTLE_SECONDS
from tests.support.integration import (
    GOOD_CARD,
    emulator_session,
    eventually,
    own_emulator,
    pay_with_card,
)

KEY = "sk_test_emulator"
PENDING_REFUND_CARD = "4000000000007726"
FAILING_REFUND_CARD = "4000000000005126"
INQUIRY_CARD = "4000000000001976"
NOT_RECEIVED_CARD = "4000000000002685"
AMOUNT = 1200


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One emulator for the module: each test pays its own PaymentIntents."""
    with own_emulator(tmp_path_factory.mktemp("money") / "localstripe.log") as chosen:
        yield chosen


@pytest.fixture
async def client(port: int) -> AsyncIterator[stripe.StripeClient]:
    async with emulator_session(port) as session:
        yield session


async def control(port: int, path: str, body: dict[str, Any]) -> httpx.Response:
    """An emulator test control, as a bank, a cardholder or the Dashboard would act."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        return await http.post(path, json=body, headers={"Authorization": f"Bearer {KEY}"})


async def paid(client: stripe.StripeClient, card: str) -> tuple[str, str]:
    """A PaymentIntent paid with `card`: its id and its charge's."""
    intent = await client.v1.payment_intents.create_async(
        params=PaymentIntentCreateParams(
            amount=AMOUNT, currency="usd", allowed_payment_method_types=["card"]
        )
    )
    assert await pay_with_card(client, intent.id, card) == "succeeded"
    latest = (await client.v1.payment_intents.retrieve_async(intent.id)).to_dict()["latest_charge"]
    return intent.id, latest["id"] if isinstance(latest, dict) else latest


async def amount_refunded(client: stripe.StripeClient, charge: str) -> int:
    return (await client.v1.charges.retrieve_async(charge)).amount_refunded


async def events_of(client: stripe.StripeClient, kind: str, object_id: str) -> list[str]:
    """The status of `object_id` in each `kind` event sent about it, oldest first."""
    listed = await client.v1.events.list_async(params={"type": kind, "limit": 100})
    found = [
        (event.created, event.to_dict()["data"]["object"])
        async for event in listed.auto_paging_iter()
    ]
    return [obj["status"] for _, obj in sorted(found, key=lambda f: f[0]) if obj["id"] == object_id]


async def refund_becomes(client: stripe.StripeClient, refund: str, status: str) -> stripe.Refund:
    async def settled() -> stripe.Refund | None:
        found = await client.v1.refunds.retrieve_async(refund)
        return found if found.status == status else None

    found: stripe.Refund = await eventually(settled, f"{refund} {status}", SETTLE_SECONDS + 5)
    return found


async def test_a_refund_of_card_7726_is_pending_then_succeeds_with_refund_updated(
    client: stripe.StripeClient,
) -> None:
    pi, charge = await paid(client, PENDING_REFUND_CARD)
    refund = await client.v1.refunds.create_async(params={"payment_intent": pi})
    assert (refund.status, refund.pending_reason) == ("pending", "processing")
    assert await amount_refunded(client, charge) == AMOUNT  # a pending refund counts

    done = await refund_becomes(client, refund.id, "succeeded")
    assert done.pending_reason is None
    assert await events_of(client, "refund.updated", refund.id) == ["succeeded"]
    assert await events_of(client, "charge.refund.updated", refund.id) == ["succeeded"]
    assert await events_of(client, "refund.created", refund.id) == ["pending"]


async def test_a_refund_of_card_5126_succeeds_then_fails_and_no_longer_counts_as_refunded(
    client: stripe.StripeClient,
) -> None:
    pi, charge = await paid(client, FAILING_REFUND_CARD)
    refund = await client.v1.refunds.create_async(params={"payment_intent": pi, "amount": 500})
    assert refund.status == "succeeded"
    assert await amount_refunded(client, charge) == 500

    failed = await refund_becomes(client, refund.id, "failed")
    assert failed.failure_reason == "expired_or_canceled_card"
    found = await client.v1.charges.retrieve_async(charge)
    assert (found.amount_refunded, found.refunded) == (0, False)
    assert await events_of(client, "refund.failed", refund.id) == ["failed"]
    assert await events_of(client, "charge.refund.updated", refund.id) == ["failed"]


async def test_refunds_held_pending_by_the_control_wait_for_the_succeed_or_fail_control(
    client: stripe.StripeClient, port: int
) -> None:
    pi, charge = await paid(client, GOOD_CARD)
    path = f"/_vult/payment_intents/{pi}/pending_refunds"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as anonymous:
        assert (await anonymous.post(path, json={"count": 2})).status_code == 401
    assert (await control(port, path, {"count": 0})).status_code == 400
    assert (await control(port, path, {"count": 2})).status_code == 200
    first, second, third = [
        await client.v1.refunds.create_async(params={"payment_intent": pi, "amount": amount})
        for amount in (100, 200, 300)
    ]
    assert [r.status for r in (first, second, third)] == ["pending", "pending", "succeeded"]
    await asyncio.sleep(SETTLE_SECONDS + 0.5)  # no timer settles them: only the controls
    assert (await client.v1.refunds.retrieve_async(first.id)).status == "pending"

    answer = await control(port, f"/_vult/refunds/{first.id}/succeed", {})
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    assert (await control(port, f"/_vult/refunds/{first.id}/succeed", {})).status_code == 400
    answer = await control(port, f"/_vult/refunds/{second.id}/fail", {})
    assert answer.json()["failure_reason"] == "lost_or_stolen_card"
    assert (await control(port, f"/_vult/refunds/{second.id}/fail", {})).status_code == 400
    assert await amount_refunded(client, charge) == 100 + 300
    assert await events_of(client, "refund.updated", first.id) == ["succeeded"]
    assert await events_of(client, "refund.failed", second.id) == ["failed"]

    # Without a count, every later refund of the PaymentIntent is held.
    assert (await control(port, path, {})).status_code == 200
    later = [
        await client.v1.refunds.create_async(params={"payment_intent": pi, "amount": 10})
        for _ in range(2)
    ]
    assert [r.status for r in later] == ["pending", "pending"]


def sdk_dispute_statuses() -> set[str]:
    """The statuses the pinned SDK's Dispute object names (`Union[Literal[...], str]`)."""
    literal, _ = typing.get_args(stripe.Dispute.__annotations__["status"])
    return set(typing.get_args(literal))


async def test_every_dispute_status_of_the_pinned_version_is_reachable(
    client: stripe.StripeClient, port: int
) -> None:
    journeys = [
        (False, ["under_review", "appeal_needs_response", "appeal_under_review", "won"]),
        (False, ["under_review", "appeal_needs_response", "lost"]),
        (True, ["warning_under_review", "warning_closed"]),
        (True, ["prevented"]),
        (True, ["needs_response", "lost"]),  # an inquiry escalated to a chargeback
    ]
    reached: set[str] = set()
    for inquiry, steps in journeys:
        _, charge = await paid(client, GOOD_CARD)
        opened = await control(port, f"/_vult/charges/{charge}/dispute", {"inquiry": inquiry})
        dispute = opened.json()["id"]
        reached.add(opened.json()["status"])
        for status in steps:
            moved = await control(port, f"/_vult/disputes/{dispute}/status", {"status": status})
            assert moved.status_code == 200, moved.text
            reached.add(moved.json()["status"])
        found = await client.v1.disputes.retrieve_async(dispute)
        assert (found.status, found.amount) == (steps[-1], AMOUNT)  # it keeps its amount
        again = await control(port, f"/_vult/disputes/{dispute}/status", {"status": "won"})
        assert again.status_code == 400  # over: no status follows
    assert reached == sdk_dispute_statuses()


async def test_a_chargeback_appealed_and_won_sends_stripes_dispute_events(
    client: stripe.StripeClient, port: int
) -> None:
    _, charge = await paid(client, GOOD_CARD)
    dispute = (await control(port, f"/_vult/charges/{charge}/dispute", {})).json()["id"]
    skipped = await control(port, f"/_vult/disputes/{dispute}/status", {"status": "won"})
    assert skipped.status_code == 400  # decided only after the response is reviewed
    steps = ["under_review", "appeal_needs_response", "appeal_under_review", "won"]
    for status in steps:
        await control(port, f"/_vult/disputes/{dispute}/status", {"status": status})

    assert await events_of(client, "charge.dispute.created", dispute) == ["needs_response"]
    assert await events_of(client, "charge.dispute.funds_withdrawn", dispute) == ["needs_response"]
    assert sorted(await events_of(client, "charge.dispute.updated", dispute)) == sorted(steps)
    assert await events_of(client, "charge.dispute.funds_reinstated", dispute) == ["won"]
    assert await events_of(client, "charge.dispute.closed", dispute) == ["won"]


async def test_an_inquiry_of_card_1976_withdraws_nothing_and_a_full_refund_closes_it(
    client: stripe.StripeClient, port: int
) -> None:
    pi, charge = await paid(client, INQUIRY_CARD)

    async def opened() -> stripe.Dispute | None:
        listed = await client.v1.disputes.list_async(params={"payment_intent": pi})
        return listed.data[0] if listed.data else None

    inquiry: stripe.Dispute = await eventually(opened, "the inquiry opened", 10)
    assert (inquiry.status, inquiry.is_charge_refundable) == ("warning_needs_response", True)
    assert await events_of(client, "charge.dispute.created", inquiry.id) == [
        "warning_needs_response"
    ]
    assert await events_of(client, "charge.dispute.funds_withdrawn", inquiry.id) == []

    part = await client.v1.refunds.create_async(params={"payment_intent": pi, "amount": 200})
    assert part.status == "succeeded"
    still = await client.v1.disputes.retrieve_async(inquiry.id)
    assert still.status == "warning_needs_response"
    await client.v1.refunds.create_async(params={"payment_intent": pi, "amount": AMOUNT - 200})
    closed = await client.v1.disputes.retrieve_async(inquiry.id)
    assert (closed.status, closed.amount) == ("warning_closed", AMOUNT)
    assert await events_of(client, "charge.dispute.closed", inquiry.id) == ["warning_closed"]
    # "Disputes and chargebacks aren't possible on credit card charges that are fully refunded."
    assert (await control(port, f"/_vult/charges/{charge}/dispute", {})).status_code == 400


async def test_a_refund_during_a_chargeback_is_refused_with_charge_disputed_until_it_is_won(
    client: stripe.StripeClient, port: int
) -> None:
    pi, charge = await paid(client, GOOD_CARD)
    await control(port, f"/_vult/payment_intents/{pi}/pending_refunds", {"count": 1})
    pending = await client.v1.refunds.create_async(params={"payment_intent": pi, "amount": 100})
    assert pending.status == "pending"
    opened = (await control(port, f"/_vult/charges/{charge}/dispute", {})).json()
    assert (opened["status"], opened["is_charge_refundable"]) == ("needs_response", False)
    # The refund still pending cannot complete: the money went back through the chargeback.
    failed = await client.v1.refunds.retrieve_async(pending.id)
    assert (failed.status, failed.failure_reason) == (
        "failed",
        "charge_for_pending_refund_disputed",
    )

    by_intent = RefundCreateParams(payment_intent=pi)
    by_charge = RefundCreateParams(charge=charge, amount=100)
    for params in (by_intent, by_charge):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.refunds.create_async(params=params)
        assert refused.value.code == "charge_disputed"
        assert refused.value.http_status == 400
    listed = await client.v1.refunds.list_async(params={"payment_intent": pi})
    assert [r.id for r in listed.data] == [pending.id]

    won = await control(port, f"/_vult/disputes/{opened['id']}/close", {"outcome": "won"})
    assert won.json()["is_charge_refundable"] is True
    refund = await client.v1.refunds.create_async(params={"payment_intent": pi, "amount": 100})
    assert refund.status == "succeeded"


async def test_a_chargeback_of_card_2685_lost_leaves_the_charge_unrefundable(
    client: stripe.StripeClient, port: int
) -> None:
    pi, _ = await paid(client, NOT_RECEIVED_CARD)

    async def opened() -> stripe.Dispute | None:
        listed = await client.v1.disputes.list_async(params={"payment_intent": pi})
        return listed.data[0] if listed.data else None

    dispute: stripe.Dispute = await eventually(opened, "the chargeback opened", 10)
    assert (dispute.status, dispute.reason) == ("needs_response", "product_not_received")
    unknown = await control(port, f"/_vult/disputes/{dispute.id}/status", {"status": "x"})
    assert unknown.status_code == 400
    lost = await control(port, f"/_vult/disputes/{dispute.id}/close", {"outcome": "lost"})
    assert (lost.json()["status"], lost.json()["amount"]) == ("lost", AMOUNT)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.refunds.create_async(params={"payment_intent": pi})
    assert refused.value.code == "charge_disputed"
    assert await events_of(client, "charge.dispute.closed", dispute.id) == ["lost"]
    assert await events_of(client, "charge.dispute.funds_reinstated", dispute.id) == []
