"""The outbox's starts after an order's write (activities/order_events.py): Temporal away
or slow leaves the deliveries pending for the sweep, and the write neither fails nor waits
longer than its bound; the sweep's own start raises, so its activity is retried."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.order_events import Outbox
from vult.domain.contracts import DeliveryInput

ONE = [DeliveryInput(event_id="evt_1", event_type="order.paid", target="shop", retry_delays=[1])]


class Away:
    """A Temporal client whose server does not answer, or refuses."""

    def __init__(self, hang: bool) -> None:
        self.hang, self.calls = hang, 0

    async def start_workflow(self, *_: Any, **__: Any) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(60)
        raise RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")


def _outbox(client: Away) -> Outbox:
    return Outbox(client=cast(Client, client), task_queue="q-deliveries")


async def test_temporal_refusing_leaves_the_deliveries_to_the_sweep() -> None:
    away = Away(hang=False)
    await _outbox(away).start(ONE)  # no exception: the order's write stands
    assert away.calls == 1


async def test_temporal_not_answering_holds_the_write_no_longer_than_its_bound() -> None:
    away = Away(hang=True)
    started = time.monotonic()
    await _outbox(away).start(ONE, within=0.3)
    assert time.monotonic() - started < 2.0


async def test_the_sweeps_start_raises_so_its_activity_is_tried_again() -> None:
    with pytest.raises(RPCError):
        await _outbox(Away(hang=False)).start(ONE, within=None)
