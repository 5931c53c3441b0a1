"""Load is shed early: past API_MAX_COMMANDS_IN_FLIGHT, a command is refused within a
moment with 503 and Retry-After, before anything reaches the order's workflow; new orders
are refused before commands on orders already placed; and one client past its own bound is
refused with 429."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pydantic
import pytest

from api.admission import Admission
from api.app import create_app
from api.errors import Overloaded
from tests.support.after_close import until
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
        api_places_kept_for_started_orders=0,
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


def _app(handle: object, **limits: Any) -> Any:
    settings = Settings(  # never connected to: the commands fail before any read
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        api_admission_wait_seconds=0.2,
        api_retry_after_seconds=3,
        **limits,
    )
    return create_app(settings, temporal=_Client(handle))  # type: ignore[arg-type]


def _http(app: Any, client: str) -> httpx.AsyncClient:
    """Requests from `client`'s address (as uvicorn gives it, or a trusted proxy names it)."""
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_client_past_its_own_bound_is_refused_with_429_and_others_go_on() -> None:
    handle = _SlowHandle(holding=2)
    app = _app(handle, api_max_commands_per_client=2)
    cancel = f"/api/orders/{uuid.uuid4()}/cancel"
    async with (
        app.router.lifespan_context(app),
        _http(app, "10.0.0.1") as one,
        _http(app, "10.0.0.2") as other,
    ):
        held = [asyncio.create_task(one.post(cancel)) for _ in range(2)]
        await asyncio.wait_for(handle.all_in.wait(), timeout=5)
        started = time.monotonic()
        refused = await one.post(cancel)
        assert time.monotonic() - started < 1.0
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] == "3"
        body = refused.json()
        assert body["outcomeKnown"] is True and "nothing was done" in body["error"]
        assert handle.sent == 2  # never reached the workflow
        # Another client is not held back by the first one's bound.
        other_cancel = asyncio.create_task(other.post(cancel))
        await until("the other client's cancel sent", lambda: handle.sent == 3)
        handle.release.set()
        assert [(await a).status_code for a in [*held, other_cancel]] == [204, 204, 204]
        # Its places free again once its commands answered.
        assert (await one.post(cancel)).status_code == 204
        assert handle.sent == 4


async def test_new_orders_are_refused_before_commands_on_placed_orders() -> None:
    """Of 3 places, 1 is kept for orders already placed: with 2 commands in flight, a new
    order is refused while a cancel (a command on a placed order) still gets the last."""
    admission = Admission(3, wait_seconds=0.2, retry_after_seconds=3, kept_for_started=1)
    release = asyncio.Event()

    async def hold(new_order: bool) -> None:
        async with admission.slot(new_order=new_order):
            await release.wait()

    holders = [asyncio.create_task(hold(new_order=True)) for _ in range(2)]
    await until("two new orders in flight", lambda: admission.in_flight == 2)
    started = time.monotonic()
    try:
        async with admission.slot(new_order=True):
            raise AssertionError("a third new order was admitted")
    except Overloaded as refused:
        assert refused.headers == {"Retry-After": "3"}
    assert time.monotonic() - started < 1.0
    placed = asyncio.create_task(hold(new_order=False))
    await until("every place held", lambda: admission.in_flight == 3)
    # Now every place is taken: a command on a placed order waits, then is refused too.
    try:
        async with admission.slot(new_order=False):
            raise AssertionError("a fourth command was admitted")
    except Overloaded:
        pass
    # A place freed while one waits goes to it.
    waiting = asyncio.create_task(hold(new_order=False))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(*holders, placed, waiting)
    assert admission.in_flight == 0


def test_no_new_order_could_be_admitted_is_refused_at_start() -> None:
    with pytest.raises(pydantic.ValidationError, match="API_PLACES_KEPT_FOR_STARTED_ORDERS"):
        Settings(api_max_commands_in_flight=4, api_places_kept_for_started_orders=4)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def _command(admission: Admission, clock: _Clock, seconds: float, new: bool) -> None:
    async with admission.slot(new_order=new):
        clock.now += seconds


async def test_the_new_order_cap_follows_the_commands_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second with a command slower than the target cuts the places new orders may take
    by a quarter; each second within it gives one back, up to the maximum."""
    clock = _Clock()
    monkeypatch.setattr("api.admission.time", clock)
    admission = Admission(10, 0.2, 2, kept_for_started=2, target_seconds=0.5)
    assert admission.new_order_cap == 8
    await _command(admission, clock, 0.9, new=False)  # slower than the target
    clock.now += 1.0
    await _command(admission, clock, 0.1, new=True)  # the window rolls: 8 * 0.75
    assert admission.new_order_cap == 6
    for expected in (7, 8, 8):  # each quick second gives one back, never past 8
        clock.now += 1.0
        await _command(admission, clock, 0.1, new=True)
        assert admission.new_order_cap == expected


async def test_a_full_queue_refuses_at_once_and_retry_after_grows_with_the_pressure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr("api.admission.time", clock)
    admission = Admission(1, wait_seconds=5, retry_after_seconds=2)
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await until("the one place held", lambda: admission.in_flight == 1)
    queued = asyncio.create_task(hold())  # waits for the place (up to 5 s)
    await asyncio.sleep(0.05)
    refusals = []
    for _ in range(20):  # every place held, one already waiting: refused before waiting
        with pytest.raises(Overloaded) as refused:
            admission.refuse_early()
        refusals.append(int((refused.value.headers or {})["Retry-After"]))
    assert refusals == [2] * 20  # no window has closed yet: the base
    clock.now += 1.0
    release.set()
    await asyncio.gather(holder, queued)
    # The last second refused 20 for the one admitted: the next refusals say to come back
    # later (about sqrt(20) times the base, with jitter), never past 30 s.
    release.clear()
    holder = asyncio.create_task(hold())
    await until("the one place held", lambda: admission.in_flight == 1)
    queued = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded) as refused:
        admission.refuse_early()
    assert 6 <= int((refused.value.headers or {})["Retry-After"]) <= 12
    release.set()
    await asyncio.gather(holder, queued)
