"""The worker runs workflow code unsandboxed unless WORKER_SANDBOX says otherwise; the
tests and the replayer always use the sandbox, with the pure packages passed through."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker
from vult.process.settings import Settings
from vult.temporal.sandbox import PASSTHROUGH_MODULES, sandbox_runner, worker_runner


def test_the_tests_sandbox_passes_the_pure_packages_through() -> None:
    runner = sandbox_runner()
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert {"workflows", "vult.domain"} <= set(PASSTHROUGH_MODULES)
    assert set(PASSTHROUGH_MODULES) <= runner.restrictions.passthrough_modules


def test_the_workers_runner_follows_the_setting() -> None:
    assert isinstance(worker_runner(False), UnsandboxedWorkflowRunner)
    assert isinstance(worker_runner(True), SandboxedWorkflowRunner)
    assert Settings(_env_file=None).worker_sandbox is False


@pytest.mark.parametrize("sandboxed", [False, True])
def test_build_worker_takes_the_setting(sandboxed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def runner(sandboxed: bool) -> Any:
        asked.append(sandboxed)
        return sandbox_runner()

    monkeypatch.setattr(worker, "worker_runner", runner)
    built: dict[str, Any] = {}
    monkeypatch.setattr(worker, "Worker", lambda *a, **kw: built.update(kw))
    settings = Settings(_env_file=None, worker_sandbox=sandboxed)
    worker.build_worker(None, settings, None, None)  # type: ignore[arg-type]  # not used
    assert asked == [sandboxed] and "workflow_runner" in built
