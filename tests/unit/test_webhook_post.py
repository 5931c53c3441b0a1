"""One webhook try (activities/webhook_post.py) against a loopback receiver of the test's
own: what each answer means, the Standard Webhooks headers (checked with the reference
library), and the bounds: a slow receiver cut at the timeout, a redirect not followed."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from activities import webhook_post
from dev.stack.procs import free_port
from vult.process.outbound import WebhookEndpoint

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
BODY = b'{"id":"evt_1","type":"order.paid"}'


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.delay = 0.0
        self.url = ""

    async def answer(self, request: web.Request) -> web.Response:
        self.got.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        await asyncio.sleep(self.delay)
        if 300 <= self.status < 400:
            raise web.HTTPFound(location="http://elsewhere.example/hooks")
        return web.Response(status=self.status, text="" if self.status == 204 else "busy")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    kept = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", kept.answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    kept.url = f"http://127.0.0.1:{port}/hooks"
    yield kept
    await runner.cleanup()


async def _try(receiver: Receiver, timeout: float = 5.0) -> webhook_post.Posted:
    endpoint = WebhookEndpoint(name="shop", url=receiver.url, secret=SECRET)
    async with httpx.AsyncClient(follow_redirects=False) as client:
        return await webhook_post.post(client, endpoint, "evt_1", BODY, timeout, "test")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(204, "delivered"), (200, "delivered"), (410, "gone"), (503, "try_again"), (400, "try_again")],
)
async def test_each_answer_means_what_docs_events_says(
    receiver: Receiver, status: int, outcome: str
) -> None:
    receiver.status = status
    posted = await _try(receiver)
    assert (posted.outcome, posted.status) == (outcome, status)
    assert posted.text.startswith(str(status))


async def test_the_try_is_signed_as_standard_webhooks_says(receiver: Receiver) -> None:
    await _try(receiver)
    [(headers, body)] = receiver.got
    assert body == BODY and headers["webhook-id"] == "evt_1"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert Webhook(SECRET).verify(body, headers) == {"id": "evt_1", "type": "order.paid"}
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    with pytest.raises(Exception, match="signature"):
        Webhook(other).verify(body, headers)


async def test_a_slow_receiver_is_cut_at_the_timeout(receiver: Receiver) -> None:
    receiver.delay = 2.0
    started = time.monotonic()
    posted = await _try(receiver, timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert posted.outcome == "try_again" and posted.status is None
    assert "0.5 s" in posted.text


async def test_a_redirect_is_an_answer_not_followed(receiver: Receiver) -> None:
    receiver.status = 302
    posted = await _try(receiver)
    assert posted.outcome == "try_again" and posted.status == 302
    assert "elsewhere.example" in posted.text and len(receiver.got) == 1


async def test_no_receiver_is_a_failed_try_not_an_error() -> None:
    endpoint = WebhookEndpoint(name="shop", url=f"http://127.0.0.1:{free_port()}/", secret=SECRET)
    async with httpx.AsyncClient() as client:
        posted = await webhook_post.post(client, endpoint, "evt_1", BODY, 2.0, "test")
    assert posted.outcome == "try_again" and posted.status is None and posted.text
