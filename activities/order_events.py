"""The outbox: order events written in the transaction that records their fact, and the
delivery of each to its targets started once that transaction commits (docs/events.md).

An event's id comes from the order and the fact, so recording it again (a retried write, a
replay, a resumed run) adds nothing. Each (event, target) is one `event_deliveries` row and
one EventDeliveryWorkflow, whose id names both: starting it again finds the one running.
Deliveries left pending (the worker killed between the commit and the start, the order's
workflow terminated there, Temporal away or slow for the start) are started by the order
sweep (`start_pending`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from vult.db.models import EVENT_DELIVERIES, ORDER_EVENTS
from vult.domain.contracts import DeliveryInput, EmittedEvent
from vult.domain.order_events import CUSTOMER_MAILS, EMAIL_TARGET, delivery_workflow_id
from vult.process.outbound import WebhookEndpoint
from vult.wire.events import event_body
from vult.wire.orders import get_order

log = logging.getLogger("vult.outbox")

FIRST_RUN = 1
# How long an order's write waits for its deliveries' starts (the sweep starts the rest).
START_WITHIN_SECONDS = 5.0

# Deliveries no try has reached: (event id, type, target).
_UNTRIED = (
    select(EVENT_DELIVERIES.c.event_id, ORDER_EVENTS.c.type, EVENT_DELIVERIES.c.target)
    .join(ORDER_EVENTS, ORDER_EVENTS.c.event_id == EVENT_DELIVERIES.c.event_id)
    .where(EVENT_DELIVERIES.c.state == "pending", EVENT_DELIVERIES.c.attempts == 0)
)


@dataclass
class Outbox:
    """What the order's events go to: the shop's endpoints, the customer's mail (when an
    SMTP server is configured), and the Temporal client that starts each delivery."""

    client: Client | None = None
    task_queue: str = ""
    endpoints: Sequence[WebhookEndpoint] = ()
    mails: bool = False
    retry_delays: Sequence[float] = field(default_factory=lambda: (5.0,))

    def targets(self, kind: str, email_refused: bool) -> list[str]:
        names = [e.name for e in self.endpoints if e.wants(kind)]
        if self.mails and kind in CUSTOMER_MAILS and not email_refused:
            names.append(EMAIL_TARGET)
        return names

    async def record(
        self, conn: AsyncConnection, order_id: uuid.UUID, events: Sequence[EmittedEvent]
    ) -> list[DeliveryInput]:
        """Within the caller's transaction, after its row write: each event new to the
        outbox, its body (the order as it now reads) and a pending delivery per target.
        Returns the deliveries to start once the transaction commits."""
        if not events:
            return []
        order = await get_order(conn, order_id)
        assert order is not None, f"order {order_id} vanished inside its own write"
        refused = order.customer_email_refused  # read with the order
        started: list[DeliveryInput] = []
        present: list[str] = []
        for event in events:
            new = await conn.scalar(
                insert(ORDER_EVENTS)
                .values(
                    event_id=event.event_id,
                    order_id=order.order_id,
                    type=event.type,
                    occurred_at=event.at,
                    body=event_body(event, order),
                )
                .on_conflict_do_nothing()
                .returning(ORDER_EVENTS.c.event_id)
            )
            if new is None:
                present.append(event.event_id)  # recorded before, with its deliveries
                continue
            for target in self.targets(event.type, refused is not None):
                await conn.execute(
                    insert(EVENT_DELIVERIES).values(
                        event_id=event.event_id, target=target, state="pending", attempts=0
                    )
                )
                started.append(self._input(event.event_id, event.type, target, FIRST_RUN))
        # A write retried after its commit: those deliveries may never have been started.
        return started + await self.pending(conn, present)

    async def pending(self, conn: AsyncConnection, event_ids: Sequence[str]) -> list[DeliveryInput]:
        """The deliveries of these events no try has reached yet (a write retried after
        its commit: the first try may have died before starting them)."""
        if not event_ids:
            return []
        rows = await conn.execute(_UNTRIED.where(EVENT_DELIVERIES.c.event_id.in_(list(event_ids))))
        return [self._input(e, k, t, FIRST_RUN) for e, k, t in rows]

    async def start(
        self, deliveries: Sequence[DeliveryInput], within: float | None = START_WITHIN_SECONDS
    ) -> None:
        """Start each delivery's workflow; one already started (or done) is left as it is.

        After an order's write (`within` seconds): Temporal away or slow leaves the rest
        pending for the sweep, so the order's write never waits on Temporal or fails for
        it. The sweep's own call (`within` None) raises instead, and is retried."""
        if self.client is None or not deliveries:
            return
        if within is None:
            await self._start(deliveries)
            return
        try:
            async with asyncio.timeout(within):
                await self._start(deliveries)
        except (TimeoutError, RPCError) as err:
            log.warning(
                "order event deliveries left for the sweep to start (%s): %s",
                len(deliveries),
                err,
            )

    async def _start(self, deliveries: Sequence[DeliveryInput]) -> None:
        assert self.client is not None
        for d in deliveries:
            try:
                await self.client.start_workflow(
                    "EventDeliveryWorkflow",
                    d,
                    id=delivery_workflow_id(d.event_id, d.target, d.run),
                    task_queue=self.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    static_summary=f"{d.event_type} to {d.target}",
                )
            except WorkflowAlreadyStartedError:
                continue  # done before: a delivery is made once per run

    def _input(self, event_id: str, kind: str, target: str, run: int) -> DeliveryInput:
        return DeliveryInput(
            event_id=event_id,
            event_type=kind,
            target=target,
            run=run,
            retry_delays=list(self.retry_delays),
        )

    async def start_pending(self, engine: AsyncEngine, older_than: timedelta) -> int:
        """The sweep's part: deliveries still untried some time after their event was
        recorded (their start was lost). Returns how many it started."""
        cutoff = datetime.now(UTC) - older_than
        async with engine.connect() as conn:
            rows = (
                await conn.execute(_UNTRIED.where(ORDER_EVENTS.c.occurred_at < cutoff).limit(500))
            ).all()
        await self.start([self._input(e, k, t, FIRST_RUN) for e, k, t in rows], within=None)
        if rows:
            log.warning("started %d order event deliveries that were never started", len(rows))
        return len(rows)
