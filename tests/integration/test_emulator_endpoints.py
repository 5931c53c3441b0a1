"""The emulator's webhook endpoints as Stripe's API has them (dev/stack/stripe_endpoints.py):
created with a secret shown once and an API version, listed a page at a time, 16 at most,
updated, deleted and kept across a restart; each event delivered at its endpoint's API
version and signed with its secret. And Stripe.js served at the pinned release
(dev/stack/stripe_js.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import stripe
from aiohttp import web
from stripe._api_version import _ApiVersion
from stripe.params import (
    PaymentIntentCreateParams,
    WebhookEndpointCreateParams,
    WebhookEndpointListParams,
    WebhookEndpointUpdateParams,
)

from dev.stack.procs import Children, free_port
from dev.stack.stripe_emulator import start_localstripe
from tests.support.integration import GOOD_CARD, emulator_client, pay_with_card

PINNED = _ApiVersion.CURRENT
SECRET_KEY = {"Authorization": "Bearer sk_test_emulator"}
HOOK_URL = "https://shop.example/api/webhooks/stripe"


@dataclass
class Emulator:
    port: int
    client: stripe.StripeClient
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    port, children, http = free_port(), Children(), stripe.AIOHTTPClient()
    try:
        start_localstripe(children, port=port, log=tmp_path / "stripe.log", state_file=None)
        yield Emulator(port, emulator_client(port, http))
    finally:
        children.stop_all()
        await http.close_async()


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: what each path received (body, Stripe-Signature)."""

    base: str
    received: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    async def event(self, path: str, kind: str, timeout: float = 10.0) -> tuple[str, str]:
        """The first event of type `kind` delivered to `path`: its payload and signature."""
        for _ in range(int(timeout / 0.05)):
            for payload, signature in self.received.get(path, []):
                if json.loads(payload)["type"] == kind:
                    return payload, signature
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {kind} delivered to {path}; got {self.received}")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    found = Receiver(f"http://127.0.0.1:{port}")

    async def receive(request: web.Request) -> web.Response:
        signature = request.headers.get("Stripe-Signature", "")
        found.received.setdefault(request.path, []).append((await request.text(), signature))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield found
    finally:
        await runner.cleanup()


async def paid_intent(client: stripe.StripeClient) -> str:
    intent = await client.v1.payment_intents.create_async(
        params=PaymentIntentCreateParams(
            amount=1200, currency="usd", allowed_payment_method_types=["card"]
        )
    )
    assert await pay_with_card(client, intent.id, GOOD_CARD) == "succeeded"
    return intent.id


def register(base: str, name: str, url: str, secret: str, events: list[str]) -> None:
    """As dev/stack/stripe_emulator.register_webhook does, with the stack's own secret."""
    answer = httpx.post(
        f"{base}/_config/webhooks/{name}",
        json={"url": url, "secret": secret, "events": events},
        timeout=10,
    )
    answer.raise_for_status()


async def test_an_endpoint_is_created_with_its_secret_shown_once_and_its_api_version(
    emulator: Emulator,
) -> None:
    client = emulator.client
    pinned = await client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(
            url=HOOK_URL,
            enabled_events=["payment_intent.succeeded", "charge.refunded"],
            api_version="2026-10-28.endive",
            description="the shop",
            metadata={"team": "payments"},
        )
    )
    created = pinned.to_dict()
    assert str(created["secret"]).startswith("whsec_") and len(created["secret"]) > 20
    assert created["status"] == "enabled" and created["api_version"] == PINNED
    assert created["enabled_events"] == ["payment_intent.succeeded", "charge.refunded"]
    assert (created["description"], created["metadata"]) == ("the shop", {"team": "payments"})
    again = (await client.v1.webhook_endpoints.retrieve_async(pinned.id)).to_dict()
    assert "secret" not in again  # shown at creation only
    assert {k: v for k, v in created.items() if k != "secret"} == again

    default = await client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(url=HOOK_URL, enabled_events=["*"])
    )
    assert default.api_version is None  # the account's default version
    assert default.to_dict()["secret"] != created["secret"]


async def test_endpoints_are_listed_newest_first_a_page_at_a_time_and_16_at_most(
    emulator: Emulator,
) -> None:
    client = emulator.client
    made = [
        (
            await client.v1.webhook_endpoints.create_async(
                params=WebhookEndpointCreateParams(
                    url=f"{HOOK_URL}/{i}", enabled_events=["payment_intent.succeeded"]
                )
            )
        ).id
        for i in range(16)
    ]
    newest_first = made[::-1]

    first = await client.v1.webhook_endpoints.list_async(params=WebhookEndpointListParams(limit=5))
    assert [e.id for e in first.data] == newest_first[:5] and first.has_more
    seen = [e.id async for e in first.auto_paging_iter()]
    assert seen == newest_first  # every page, each endpoint once
    everything = await client.v1.webhook_endpoints.list_async(
        params=WebhookEndpointListParams(limit=100)
    )
    assert [e.id for e in everything.data] == newest_first and not everything.has_more
    default = await client.v1.webhook_endpoints.list_async()
    assert len(default.data) == 10 and default.has_more  # 10 unless told
    after = await client.v1.webhook_endpoints.list_async(
        params=WebhookEndpointListParams(limit=3, starting_after=newest_first[13])
    )
    assert [e.id for e in after.data] == newest_first[14:] and not after.has_more
    before = await client.v1.webhook_endpoints.list_async(
        params=WebhookEndpointListParams(limit=3, ending_before=newest_first[5])
    )
    assert [e.id for e in before.data] == newest_first[2:5] and before.has_more

    for limit in (0, 101):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.webhook_endpoints.list_async(
                params=WebhookEndpointListParams(limit=limit)
            )
        assert refused.value.param == "limit"

    seventeenth = WebhookEndpointCreateParams(url=HOOK_URL, enabled_events=["*"])
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.webhook_endpoints.create_async(params=seventeenth)
    assert "maximum of 16 webhook endpoints" in str(refused.value.user_message)
    await client.v1.webhook_endpoints.delete_async(made[0])
    assert (await client.v1.webhook_endpoints.create_async(params=seventeenth)).id not in made


async def test_an_endpoint_is_updated_disabled_and_deleted(emulator: Emulator) -> None:
    client = emulator.client
    made = await client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(
            url=HOOK_URL, enabled_events=["*"], metadata={"a": "1", "b": "2"}
        )
    )
    changed = await client.v1.webhook_endpoints.update_async(
        made.id,
        params=WebhookEndpointUpdateParams(
            enabled_events=["charge.dispute.created"], disabled=True, metadata={"a": ""}
        ),
    )
    assert changed.enabled_events == ["charge.dispute.created"]
    assert changed.status == "disabled" and changed.to_dict()["metadata"] == {"b": "2"}
    enabled = await client.v1.webhook_endpoints.update_async(
        made.id, params=WebhookEndpointUpdateParams(disabled=False)
    )
    assert enabled.status == "enabled"

    deleted = await client.v1.webhook_endpoints.delete_async(made.id)
    assert (deleted.id, deleted.deleted) == (made.id, True)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.webhook_endpoints.retrieve_async(made.id)
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    listed = await client.v1.webhook_endpoints.list_async()
    assert listed.data == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("", {"url": HOOK_URL}, "enabled_events"),
        ("", {"enabled_events[0]": "*"}, "url"),
        ("", {"url": "shop.example/hook", "enabled_events[0]": "*"}, "url"),
        ("", {"url": HOOK_URL, "enabled_events[0]": "payment_intent.paid"}, "enabled_events[0]"),
        (
            "",
            {"url": HOOK_URL, "enabled_events[0]": "*", "api_version": "2026-13-01"},
            "api_version",
        ),
        ("", {"url": HOOK_URL, "enabled_events[0]": "*", "secret": "whsec_mine"}, "secret"),
        ("/{id}", {"api_version": "2025-09-30.clover"}, "api_version"),
        ("/{id}", {"disabled": "maybe"}, "disabled"),
    ],
)
async def test_parameters_stripe_refuses_are_refused(
    emulator: Emulator, path: str, body: dict[str, str], param: str
) -> None:
    """Sent raw, as the SDK's types would not let them be written."""
    made = await emulator.client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(url=HOOK_URL, enabled_events=["*"])
    )
    async with httpx.AsyncClient(base_url=emulator.base, headers=SECRET_KEY) as http:
        answer = await http.post(f"/v1/webhook_endpoints{path.format(id=made.id)}", data=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    unchanged = await emulator.client.v1.webhook_endpoints.retrieve_async(made.id)
    assert (unchanged.status, unchanged.api_version) == ("enabled", None)


async def test_the_stacks_endpoints_are_listed_at_the_pinned_version_and_re_pointed_by_name(
    emulator: Emulator,
) -> None:
    register(emulator.base, "vult", HOOK_URL, "whsec_stack", ["payment_intent.succeeded"])
    register(emulator.base, "vult", f"{HOOK_URL}/moved", "whsec_stack", ["charge.refunded"])
    listed = await emulator.client.v1.webhook_endpoints.list_async()
    (only,) = [e.to_dict() for e in listed.data]
    assert (only["id"], only["api_version"], only["status"]) == ("we_vult", PINNED, "enabled")
    assert (only["url"], only["enabled_events"]) == (f"{HOOK_URL}/moved", ["charge.refunded"])
    with pytest.raises(httpx.HTTPStatusError):  # no such event type
        register(emulator.base, "typo", HOOK_URL, "whsec_stack", ["payment_intent.succeded"])


async def test_each_endpoint_gets_events_at_its_api_version_signed_with_its_secret(
    emulator: Emulator, receiver: Receiver
) -> None:
    client = emulator.client
    disabled = await client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(url=f"{receiver.base}/disabled", enabled_events=["*"])
    )
    await client.v1.webhook_endpoints.update_async(
        disabled.id, params=WebhookEndpointUpdateParams(disabled=True)
    )
    await client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(
            url=f"{receiver.base}/disputes", enabled_events=["charge.dispute.created"]
        )
    )
    clover = await client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(
            url=f"{receiver.base}/clover",
            enabled_events=["payment_intent.succeeded"],
            api_version="2025-09-30.clover",
        )
    )
    default = await client.v1.webhook_endpoints.create_async(
        params=WebhookEndpointCreateParams(url=f"{receiver.base}/default", enabled_events=["*"])
    )
    register(emulator.base, "stack", f"{receiver.base}/stack", "whsec_stack", ["*"])
    secrets = {
        "/clover": str(clover.to_dict()["secret"]),
        "/default": str(default.to_dict()["secret"]),
        "/stack": "whsec_stack",
    }

    intent = await paid_intent(client)

    versions = {}
    for path, secret in secrets.items():
        payload, signature = await receiver.event(path, "payment_intent.succeeded")
        event = stripe.Webhook.construct_event(payload, signature, secret)
        assert event.to_dict()["data"]["object"]["id"] == intent
        versions[path] = event.api_version
        other = next(s for p, s in secrets.items() if p != path)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(payload, signature, other)
    assert versions == {"/clover": "2025-09-30.clover", "/default": PINNED, "/stack": PINNED}
    # Sent to in creation order, after those two: had they been sent anything, it is here.
    assert "/disabled" not in receiver.received and "/disputes" not in receiver.received
    # Read through the API, the event is at the account's default version.
    event_id = json.loads((await receiver.event("/clover", "payment_intent.succeeded"))[0])["id"]
    assert (await client.v1.events.retrieve_async(event_id)).api_version == PINNED


async def test_endpoints_and_their_secrets_survive_a_restart_with_a_state_file(
    tmp_path: Path, receiver: Receiver
) -> None:
    state, port = tmp_path / "localstripe.pickle", free_port()
    children, http = Children(), stripe.AIOHTTPClient()
    base = f"http://127.0.0.1:{port}"
    try:
        start_localstripe(children, port=port, log=tmp_path / "one.log", state_file=state)
        client = emulator_client(port, http)
        made = await client.v1.webhook_endpoints.create_async(
            params=WebhookEndpointCreateParams(
                url=f"{receiver.base}/made", enabled_events=["payment_intent.succeeded"]
            )
        )
        register(base, "stack", f"{receiver.base}/stack", "whsec_stack", ["*"])
        children.stop_all()

        start_localstripe(children, port=port, log=tmp_path / "two.log", state_file=state)
        listed = await client.v1.webhook_endpoints.list_async()
        assert [(e.id, e.api_version) for e in listed.data] == [
            ("we_stack", PINNED),
            (made.id, None),
        ]
        await paid_intent(client)
        for path, secret in (("/made", str(made.to_dict()["secret"])), ("/stack", "whsec_stack")):
            payload, signature = await receiver.event(path, "payment_intent.succeeded")
            assert stripe.Webhook.construct_event(payload, signature, secret).api_version == PINNED
    finally:
        children.stop_all()
        await http.close_async()


async def test_stripe_js_is_served_at_the_pinned_release_and_speaks_its_api_version(
    emulator: Emulator,
) -> None:
    release = _ApiVersion.CURRENT_MAJOR
    intent = await emulator.client.v1.payment_intents.create_async(
        params=PaymentIntentCreateParams(
            amount=1200, currency="usd", allowed_payment_method_types=["card"]
        )
    )
    async with httpx.AsyncClient(base_url=emulator.base) as http:
        versioned = await http.get(f"/js.stripe.com/{release}/stripe.js")
        legacy = await http.get("/js.stripe.com/v3/")
        other = await http.get("/js.stripe.com/clover/stripe.js")

        async def read(version: str) -> httpx.Response:
            body = {"key": "pk_test_x", "client_secret": intent.client_secret}
            return await http.post(
                "/_vult/payment_intent", content=json.dumps({**body, "_stripe_version": version})
            )

        same, older = await read(PINNED), await read("2025-09-30.clover")
    assert versioned.status_code == 200
    assert versioned.headers["content-type"].startswith("application/javascript")
    assert f'const STRIPE_JS_API_VERSION = "{PINNED}";' in versioned.text
    assert "stripe.confirmCardPayment" in versioned.text  # the stand-in, completed
    assert legacy.status_code == 200 and "const STRIPE_JS_API_VERSION" not in legacy.text
    assert other.status_code == 404  # only the pinned release is served
    assert same.status_code == 200 and same.json()["id"] == intent.id
    assert older.status_code == 400 and PINNED in older.json()["error"]["message"]
