"""The Temporal calls behind ops' event routes: send an event again (a new run of its
delivery workflow per target), turn a disabled endpoint back on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.errors import ServiceUnavailable
from vult.domain.contracts import DeliveryInput
from vult.domain.order_events import delivery_workflow_id


@dataclass(frozen=True)
class Resend:
    event_id: str
    event_type: str
    target: str
    runs: int  # how many runs its delivery has had


class EventCommands:
    def __init__(
        self, client: Client, task_queue: str, retry_delays: Sequence[float], deadline: float
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._delays = list(retry_delays)
        self._deadline = deadline

    async def redeliver(self, resends: Sequence[Resend]) -> list[str]:
        """A new run of each delivery (its tries start over, the event's id unchanged).
        A run already started for the same number is joined, not doubled."""
        started = []
        try:
            async with asyncio.timeout(self._deadline):
                for r in resends:
                    run = r.runs + 1
                    workflow_id = delivery_workflow_id(r.event_id, r.target, run)
                    await self._client.start_workflow(
                        "EventDeliveryWorkflow",
                        DeliveryInput(
                            event_id=r.event_id,
                            event_type=r.event_type,
                            target=r.target,
                            run=run,
                            retry_delays=self._delays,
                        ),
                        id=workflow_id,
                        task_queue=self._task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        static_summary=f"{r.event_type} to {r.target}, sent again by ops",
                    )
                    started.append(workflow_id)
        except (TimeoutError, RPCError) as err:
            raise ServiceUnavailable(
                f"Temporal is unavailable; started {len(started)} of {len(resends)}: send "
                "the rest again"
            ) from err
        return started

    async def enable_endpoint(self, name: str) -> bool:
        try:
            async with asyncio.timeout(self._deadline):
                result: bool = await self._client.execute_workflow(
                    "EnableEndpointWorkflow",
                    name,
                    id=f"enable-endpoint-{name}",
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    result_type=bool,
                )
                return result
        except (TimeoutError, RPCError) as err:
            raise ServiceUnavailable("Temporal is unavailable") from err
