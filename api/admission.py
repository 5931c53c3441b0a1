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
    def __init__(self, limit: int, wait_seconds: float, retry_after_seconds: int) -> None:
        self._free = asyncio.Semaphore(limit)
        self._wait = wait_seconds
        self._retry_after = retry_after_seconds

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the places for the command; Overloaded when none frees up in time."""
        try:
            async with asyncio.timeout(self._wait):
                await self._free.acquire()
        except TimeoutError:
            metrics.COMMANDS_SHED.inc()
            raise Overloaded(self._retry_after) from None
        try:
            yield
        finally:
            self._free.release()
