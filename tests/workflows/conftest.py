"""OrderWorkflow on the real dev server, its activities replaced by same-named stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from tests.support.workflows import (
    Backend,
    Harness,
    stand_in_worker,
)


@pytest.fixture
async def harness(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    backend = Backend()
    async with stand_in_worker(temporal_client, task_queue, backend):
        yield Harness(temporal_client, task_queue, backend)
