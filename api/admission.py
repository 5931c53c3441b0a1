"""Admission: how many commands this API process has in flight at its order workflows at
once (a placement, a payment request, a cancel, an ops command). One more waits a moment for
a place and is otherwise refused at once (503 with Retry-After) before anything is started,
so a flash sale is shed in well under a second instead of queueing at the workflows for the
command deadline (docs/deploying.md, "Sizing the API's admission"). Webhooks are not gated:
they are short signals, and Stripe retries a refused one anyway.

Three things keep a sale at the machine's pace rather than past it:
- **New orders first.** A placement may take only the places not kept for commands on
  orders already placed, so an admitted shopper's payment is not refused for a newcomer.
- **The new-order cap follows the commands' latency** (additive increase, multiplicative
  decrease): each second in which a command took longer than the target lowers it by a
  quarter, each second within it raises it by one, between 1 and its maximum. The orders
  already admitted (their payments, webhooks, waits) are not gated, so this is what keeps
  them from piling up behind new ones when the workers are the bottleneck.
- **Refusals are cheap and spread out.** With every place taken and as many commands
  already waiting as could take a place soon, a command is refused before anything is read
  (`refuse_early`), and Retry-After grows with how many were refused for each one admitted
  lately, so polite clients come back at about the pace places free up.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api import metrics
from api.errors import Overloaded

# How often the new-order cap and the Retry-After are adjusted, in seconds.
_WINDOW = 1.0
_LONGEST_RETRY_AFTER = 30


class Admission:
    def __init__(
        self,
        limit: int,
        wait_seconds: float,
        retry_after_seconds: int,
        kept_for_started: int = 0,
        target_seconds: float = 1.0,
    ) -> None:
        self._limit = limit
        self._new_max = max(1, limit - kept_for_started)
        self._new_cap = float(self._new_max)
        self._in_flight = 0
        self._waiting = 0
        self._freed = asyncio.Event()  # set (and replaced) each time a place frees up
        self._wait = wait_seconds
        self._retry_after = retry_after_seconds
        self._target = target_seconds
        # This window's: the slowest command, how many were admitted and refused.
        self._window_began = time.monotonic()
        self._slowest = 0.0
        self._admitted = 0
        self._refused = 0
        self._pressure = 0.0  # refused per admitted, last window

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def new_order_cap(self) -> int:
        return max(1, int(self._new_cap))

    def _cap(self, new_order: bool) -> int:
        return self.new_order_cap if new_order else self._limit

    def retry_after(self) -> int:
        """Seconds a refused client is told to wait: the base, stretched by how many were
        refused for each one admitted lately (each refused client comes back once in that
        time), with jitter so they do not come back together."""
        stretch = math.sqrt(max(1.0, self._pressure))
        if stretch == 1.0:
            return self._retry_after
        seconds = self._retry_after * stretch * random.uniform(0.8, 1.25)
        return max(self._retry_after, min(_LONGEST_RETRY_AFTER, round(seconds)))

    def _roll(self) -> None:
        now = time.monotonic()
        if now - self._window_began < _WINDOW:
            return
        if self._admitted or self._refused:
            self._pressure = self._refused / max(1, self._admitted)
        if self._slowest > self._target:
            self._new_cap = max(1.0, self._new_cap * 0.75)
        elif self._admitted:
            self._new_cap = min(float(self._new_max), self._new_cap + 1.0)
        self._window_began, self._slowest, self._admitted, self._refused = now, 0.0, 0, 0

    def _shed(self) -> Overloaded:
        self._roll()
        self._refused += 1
        metrics.COMMANDS_SHED.inc()
        return Overloaded(self.retry_after())

    def refuse_early(self, *, new_order: bool = False) -> None:
        """Overloaded now, before the command reads anything, when every place it may take
        is held and as many commands already wait as could take one soon."""
        if self._in_flight >= self._cap(new_order) and self._waiting >= self._cap(new_order):
            raise self._shed()

    async def _place(self, new_order: bool) -> None:
        while self._in_flight >= self._cap(new_order):
            await self._freed.wait()
        # No await between the check and the count: the place is this command's.
        self._in_flight += 1

    @asynccontextmanager
    async def slot(self, *, new_order: bool = False) -> AsyncIterator[None]:
        """Hold one of the places for the command; Overloaded when none frees up in time."""
        self.refuse_early(new_order=new_order)
        self._waiting += 1
        try:
            async with asyncio.timeout(self._wait):
                await self._place(new_order)
        except TimeoutError:
            raise self._shed() from None
        finally:
            self._waiting -= 1
        began = time.monotonic()
        self._admitted += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._slowest = max(self._slowest, time.monotonic() - began)
            self._roll()
            freed, self._freed = self._freed, asyncio.Event()
            freed.set()
