"""Load is shed early: past API_MAX_COMMANDS_IN_FLIGHT, a command is refused within a
moment with 503 and Retry-After, before anything reaches the order's workflow."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from api.app import create_app
from vult.process.settings import Settings


class _SlowHandle:
    """A workflow that takes its time to answer, counting the commands it was sent."""

    def __init__(self, holding: int) -> None:
        self.sent = 0
        self.holding = holding
        self.all_in = asyncio.Event()  # `holding` commands reached it
        self.release = asyncio.Event()

    async def execute_update(self, *_: Any, **__: Any) -> None:
        self.sent += 1
        if self.sent == self.holding:
            self.all_in.set()
        await self.release.wait()


class _Client:
    def __init__(self, handle: object) -> None:
        self._handle = handle

    def get_workflow_handle_for(self, *_: Any, **__: Any) -> object:
        return self._handle


async def test_a_command_past_the_limit_is_refused_at_once_and_nothing_is_sent() -> None:
    settings = Settings(  # never connected to: the commands fail before any read
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        api_max_commands_in_flight=2,
        api_admission_wait_seconds=0.2,
        api_retry_after_seconds=3,
    )
    handle = _SlowHandle(holding=2)
    app = create_app(settings, temporal=_Client(handle))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        cancel = f"/api/orders/{uuid.uuid4()}/cancel"
        admitted = [asyncio.create_task(http.post(cancel)) for _ in range(2)]
        # Both reached the workflow and hold their places.
        await asyncio.wait_for(handle.all_in.wait(), timeout=5)
        started = time.monotonic()
        refused = await http.post(cancel)
        elapsed = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "3"
        body = refused.json()
        assert body["outcomeKnown"] is True and "nothing was done" in body["error"]
        assert elapsed < 1.0
        assert handle.sent == 2  # the refused one never reached the workflow
        handle.release.set()
        assert [(await a).status_code for a in admitted] == [204, 204]
        # With the places free again, the next command goes through.
        assert (await http.post(cancel)).status_code == 204
        assert handle.sent == 3


def test_every_503_tells_when_to_come_back() -> None:
    from api.errors import OutcomeUnknown, ServiceUnavailable

    assert ServiceUnavailable("x").headers == {"Retry-After": "5"}
    assert OutcomeUnknown("x").headers == {"Retry-After": "5"}
