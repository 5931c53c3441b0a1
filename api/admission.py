"""Admission: how many commands this API process has in flight at its order workflows at
once (a placement, a payment request, a cancel, an ops command). One more waits a moment for
a place and is otherwise refused at once (503 with Retry-After) before anything is started,
so a flash sale is shed in well under a second instead of queueing at the workflows for the
command deadline (docs/deploying.md, "Sizing the API's admission"). Webhooks are not gated:
they are short signals, and Stripe retries a refused one anyway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api import metrics
from api.errors import Overloaded


class Admission:
    def __init__(
        self,
        limit: int,
        wait_seconds: float,
        retry_after_seconds: int,
        kept_for_started: int = 0,
    ) -> None:
        # A command on an order already placed may take any place; a placement only
        # those not kept for them, so a sale refuses new orders before it refuses the
        # payment of one it admitted.
        self._caps = {False: limit, True: max(1, limit - kept_for_started)}
        self._in_flight = 0
        self._freed = asyncio.Event()  # set (and replaced) each time a place frees up
        self._wait = wait_seconds
        self._retry_after = retry_after_seconds

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def _place(self, cap: int) -> None:
        while self._in_flight >= cap:
            await self._freed.wait()
        # No await between the check and the count: the place is this command's.
        self._in_flight += 1

    @asynccontextmanager
    async def slot(self, *, new_order: bool = False) -> AsyncIterator[None]:
        """Hold one of the places for the command; Overloaded when none frees up in time."""
        try:
            async with asyncio.timeout(self._wait):
                await self._place(self._caps[new_order])
        except TimeoutError:
            metrics.COMMANDS_SHED.inc()
            raise Overloaded(self._retry_after) from None
        try:
            yield
        finally:
            self._in_flight -= 1
            freed, self._freed = self._freed, asyncio.Event()
            freed.set()
