"""What a resumed run re-learns from Stripe's refund list: a refund ops settled is not owed
again, and the stand-in lists refunds newest first, as Stripe does."""

from __future__ import annotations

import asyncio
import uuid

from tests.support.workflows import Backend, FakeStripeIntent
from vult.domain.contracts import ChargeFacts, Money, OrderState, RefundInfo
from workflows import steps
from workflows.decisions import adopt_our_refunds, adopt_watched_refunds, refund_owed, watched_owed

OID = uuid.UUID("11111111-1111-1111-1111-111111111111")
OURS = f"order:{OID}:"


def test_a_cancellation_refund_ops_resolved_is_owed_again_on_every_catch_up() -> None:
    # Cancelled order, its refund re_1 failed, run terminated and resumed: catch_up parks.
    # Ops `resolve` (paid back by bank transfer): failed_refunds cleared, re_1 settled in the
    # state and on the row. catch_up runs again (attention is None, catching_up still True):
    key = steps.refund_key(OID, "pi_1")
    facts = ChargeFacts(
        payment_intent_id="pi_1",
        amount_captured=10800,
        refunds=[
            RefundInfo(refund_id="re_1", status="failed", amount=10800, currency="usd", key=key)
        ],
    )
    state = OrderState(money=Money(settled_refund_ids=["re_1"]))
    adopt_our_refunds(state, "pi_1", facts, steps.refund_key(OID, "pi_1"))
    adopt_watched_refunds(state, "pi_1", facts, OURS)
    # ... and does not park again: the refund ops settled is not owed.
    assert not refund_owed(state, "pi_1", facts), state.money.failed_refunds


def test_the_stand_in_lists_refunds_as_stripe_does_newest_first() -> None:
    b = Backend()
    b.intents["pi_1"] = FakeStripeIntent("pi_1", 10800, "usd", str(OID))
    b.intents["pi_1"].status = "succeeded"
    key = f"{OURS}unshipped:pi_1"
    for k in (key, f"{key}:again-1"):  # the first try, then ops' retry
        b.refunds[k] = "pi_1"
        b.refund_amounts[k] = 5400
    b.refund_outcomes[b._refund_id(key)] = "failed"  # again-1 succeeded
    facts = asyncio.run(b.read_charge("pi_1"))
    state = OrderState()
    adopt_watched_refunds(state, "pi_1", facts, OURS)
    assert watched_owed(state, "pi_1") == [], [r.key for r in facts.refunds]
