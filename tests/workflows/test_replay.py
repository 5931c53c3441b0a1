"""Saved histories must replay on the current OrderWorkflow: a change that would break
running orders (non-determinism) fails here before it reaches a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from vult.temporal.sandbox import sandbox_runner
from workflows.order import OrderWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_saved_history_replays_on_the_current_workflow(path: Path) -> None:
    history = WorkflowHistory.from_json("order-replay", path.read_text())  # noqa: ASYNC240
    result = await Replayer(
        workflows=[OrderWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),  # the worker's own sandbox
    ).replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_there_is_a_history_to_replay() -> None:
    assert HISTORIES
