"""OrderWorkflow on the real dev server, its activities replaced by same-named stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from api.order_commands import OrderCommands
from tests.support.after_close import after_close_commands
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


@pytest.fixture
def backend() -> Backend:
    """A fresh stand-in Backend for a test that runs its own workers on it."""
    return Backend()


@pytest.fixture
async def commands(
    temporal_client: Client, task_queue: str, backend: Backend
) -> AsyncIterator[OrderCommands]:
    """The API's commands, with a worker for the after-close workflow on `backend`."""
    async with after_close_commands(temporal_client, task_queue, backend) as made:
        yield made
