"""The API never waits on Temporal without a deadline: a command the workflow does not
answer in time is a 503 that says the outcome is not known and how to retry safely."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

from api.app import create_app
from vult.process.settings import Settings


class _StuckHandle:
    async def execute_update(self, *_: Any, **__: Any) -> None:
        await asyncio.sleep(3600)  # a workflow stuck behind a long Stripe outage


class _SdkStuckHandle:
    """As temporalio's client does: a cancelled update call raises its own error."""

    async def execute_update(self, *_: Any, **__: Any) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as err:
            raise WorkflowUpdateRPCTimeoutOrCancelledError() from err


class _ServerTimeoutHandle:
    """The server gave up waiting on the update (Temporal down or the workflow busy)."""

    async def execute_update(self, *_: Any, **__: Any) -> None:
        raise WorkflowUpdateRPCTimeoutOrCancelledError()


class _Client:
    def __init__(self, handle: object) -> None:
        self._handle = handle

    def get_workflow_handle_for(self, *_: Any, **__: Any) -> object:
        return self._handle


@pytest.mark.parametrize("handle", [_StuckHandle, _SdkStuckHandle, _ServerTimeoutHandle])
def test_a_command_the_workflow_does_not_answer_in_time_is_a_503_with_the_outcome_unknown(
    handle: type,
) -> None:
    settings = Settings(  # never connected to: the command fails before any read
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        temporal_command_timeout_seconds=0.5,
    )
    with TestClient(create_app(settings, temporal=_Client(handle()))) as http:  # type: ignore[arg-type]
        started = time.monotonic()
        response = http.post(f"/api/orders/{uuid.uuid4()}/cancel")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["outcomeKnown"] is False
    assert "not known yet" in body["error"] and "safe to repeat" in body["error"]
    assert elapsed < 5
