"""The local stack's Stripe emulator (devstack/localstripe_server.py): with a state file its
objects survive a restart, and lists (a charge's refunds) read what the store holds."""

from __future__ import annotations

from pathlib import Path

import stripe

from devstack.procs import Children, free_port
from devstack.stripe_emulator import start_localstripe
from tests.integration.conftest import GOOD_CARD, pay_with_card


def client_for(port: int, http: stripe.HTTPClient) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_emulator", base_addresses={"api": f"http://127.0.0.1:{port}"}, http_client=http
    )


async def test_refunds_are_listed_and_survive_a_restart(tmp_path: Path) -> None:
    state, port = tmp_path / "localstripe.pickle", free_port()
    children = Children()
    http = stripe.AIOHTTPClient()
    try:
        start_localstripe(children, port=port, log=tmp_path / "one.log", state_file=state)
        client = client_for(port, http)
        intent = await client.v1.payment_intents.create_async(
            params={"amount": 1200, "currency": "usd", "payment_method_types": ["card"]}
        )
        assert await pay_with_card(client, intent.id, GOOD_CARD) == "succeeded"
        refund = await client.v1.refunds.create_async(params={"payment_intent": intent.id})
        children.stop_all()

        start_localstripe(children, port=port, log=tmp_path / "two.log", state_file=state)
        listed = await client.v1.refunds.list_async(params={"payment_intent": intent.id})
        assert [r.id for r in listed.data] == [refund.id]
        again = await client.v1.payment_intents.retrieve_async(intent.id)
        assert again.status == "succeeded"
    finally:
        children.stop_all()
        await http.close_async()
