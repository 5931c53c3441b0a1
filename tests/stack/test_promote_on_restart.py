"""A restarted worker does not roll a deploy back, on the real dev server: the local stack
starts its worker with WORKER_PROMOTE=always and restarts it with unless-superseded, so
once an operator has made a newer build current, a restart of the old build leaves it so;
a rollback is not undone by a restart of the newer build either, and a build never seen
before still becomes current."""

from __future__ import annotations

import logging
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from vult.temporal.deployments import (
    deployment_config,
    promote_on_start,
    routing,
    set_current,
)
from vult.temporal.sandbox import sandbox_runner
from workflows.order import OrderWorkflow

# Ids whose text order is the wrong way round: the server's create times decide.
OLD, NEW, NEWER = "9.0.0+gcccccc", "10.0.0+gbbbbbb", "11.0.0+gaaaaaa"


def _worker(client: Client, task_queue: str, deployment: str, build_id: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        workflow_runner=sandbox_runner(),
        deployment_config=deployment_config(deployment, build_id),
    )


async def _current(client: Client, deployment: str) -> str | None:
    now = await routing(client, deployment)
    return None if now is None else now.current


async def test_a_restarted_old_build_does_not_become_current_over_a_newer_one(
    temporal_client: Client, task_queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, deployment = temporal_client, f"promote-test-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.INFO, logger="vult.deployments")

    # The stack's first start: its build becomes current.
    async with _worker(client, task_queue, deployment, OLD):
        assert await promote_on_start(client, deployment, OLD, "always")
    async with _worker(client, task_queue, deployment, NEW):
        # An operator makes a newer build current.
        await set_current(client, deployment, NEW)
        # The supervisor restarts the old build's worker: NEW stays current, and it says so.
        async with _worker(client, task_queue, deployment, OLD):
            assert not await promote_on_start(client, deployment, OLD, "unless-superseded")
            assert await _current(client, deployment) == NEW
            assert f"{NEW} stays current: it is newer" in caplog.text

            # An operator rolls back to OLD.
            await set_current(client, deployment, OLD)
    # A restart of NEW does not undo the rollback (NEW was current before).
    async with (
        _worker(client, task_queue, deployment, OLD),
        _worker(client, task_queue, deployment, NEW),
    ):
        assert not await promote_on_start(client, deployment, NEW, "unless-superseded")
        assert await _current(client, deployment) == OLD
        assert "was current before and was replaced" in caplog.text

    # A build the deployment has never seen, started after the others, takes over.
    async with (
        _worker(client, task_queue, deployment, OLD),
        _worker(client, task_queue, deployment, NEWER),
    ):
        assert await promote_on_start(client, deployment, NEWER, "unless-superseded")
        assert await _current(client, deployment) == NEWER
        # And a restart of the current build keeps it current.
        assert await promote_on_start(client, deployment, NEWER, "unless-superseded")
        assert await _current(client, deployment) == NEWER
