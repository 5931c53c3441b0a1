"""One durable timer for the earliest deadline, moved only when that deadline moves.

The Temporal samples' updatable timer: a deadline that handlers may change while the
workflow waits. Here the workflow also wakes for events, so the timer runs beside the
main loop's wait instead of being the wait: `set(due)` replaces the timer only when `due`
differs from the one running (not on every wake-up, which would add a timer to the
history each time), and `fired` tells the loop's wait condition that it went off.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow


class UpdatableTimer:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._due: datetime | None = None
        self.fired = False

    def set(self, due: datetime | None, name: str | None = None) -> None:
        """Run one timer until `due` (None: no timer), unless that one is running. `name`
        is what the Web UI's timeline shows for it (the deadline it waits for)."""
        if due == self._due:
            return
        if self._task is not None:
            self._task.cancel()
        self._due, self.fired = due, False
        self._task = None if due is None else asyncio.create_task(self._sleep_until(due, name))

    async def _sleep_until(self, due: datetime, name: str | None) -> None:
        try:
            await workflow.sleep(max(due - workflow.now(), timedelta(milliseconds=1)), summary=name)
        except asyncio.CancelledError:
            return
        self.fired = True
