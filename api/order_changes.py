"""Waiting for an order to change, for a checkout page that wants to know when its payment
is confirmed without polling.

One connection per API process LISTENs on the channel the activities notify after each
committed change (vult/db/changes.py) and wakes the requests waiting on that order. While
it listens, a waiter reads its row only when woken (and every RECHECK_LISTENING_SECONDS
besides), so thousands of open checkout pages cost the database almost nothing; when the
listener is down, waiters read every RECHECK_SECONDS, and once it listens again it wakes
every waiter, since a change may have been announced while nobody heard. A lost
connection (restart, failover) makes an answer later, never wrong; the listener reconnects
on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator

import psycopg

from vult.db.changes import CHANNEL
from vult.db.urls import libpq_url

log = logging.getLogger("vult.api.order_changes")

# Without a notification, a waiter reads the row again this often while nobody listens,
# and this often while the listener listens (a guard against a connection that died
# without a word).
RECHECK_SECONDS = 2.0
RECHECK_LISTENING_SECONDS = 10.0
# The longest a request may wait (below common proxy and load-balancer idle timeouts).
MAX_WAIT_SECONDS = 30.0
_RECONNECT_SECONDS = 1.0


class Watch:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def changed(self, within: float) -> bool:
        """Sleep until a change to the order is announced (True) or `within` seconds pass
        (False); the caller reads the row either way."""
        try:
            async with asyncio.timeout(within):
                await self.event.wait()
        except TimeoutError:
            return False
        self.event.clear()
        return True


class OrderChanges:
    def __init__(self, database_url: str) -> None:
        self._dsn = libpq_url(database_url)
        self._waiters: defaultdict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="order-changes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def watching(self, order_id: uuid.UUID) -> Iterator[Watch]:
        """Watch before reading the row, so a change committed in between is not missed."""
        watch = Watch()
        self._waiters[order_id].add(watch.event)
        try:
            yield watch
        finally:
            waiting = self._waiters.get(order_id)
            if waiting is not None:
                waiting.discard(watch.event)
                if not waiting:
                    del self._waiters[order_id]

    def _wake(self, payload: str) -> None:
        try:
            order_id = uuid.UUID(payload)
        except ValueError:
            return
        for event in self._waiters.get(order_id, ()):
            event.set()

    def recheck_within(self) -> float:
        """How long a waiter may go without reading its row, if nothing wakes it."""
        return RECHECK_LISTENING_SECONDS if self.listening.is_set() else RECHECK_SECONDS

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._wake_all()  # what changed while nobody listened is read now
                    async for notice in conn.notifies():
                        self._wake(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: wait, then listen again
                log.warning("order change listener lost its connection: %s", exc)
            self.listening.clear()
            await asyncio.sleep(_RECONNECT_SECONDS)
