"""The worker, the workflow tests and the replayer run workflow code in one sandbox, with the
pure packages (the domain, the workflow package, pydantic) passed through."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker
from vult.process.settings import Settings
from vult.temporal.sandbox import PASSTHROUGH_MODULES, sandbox_runner


def test_the_sandbox_passes_the_pure_packages_through() -> None:
    runner = sandbox_runner()
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert {"workflows", "vult.domain"} <= set(PASSTHROUGH_MODULES)
    assert set(PASSTHROUGH_MODULES) <= runner.restrictions.passthrough_modules


def test_the_worker_runs_workflows_in_that_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}
    monkeypatch.setattr(worker, "Worker", lambda *a, **kw: built.update(kw))
    worker.build_worker(None, Settings(_env_file=None), None, None)  # type: ignore[arg-type]
    runner = built["workflow_runner"]
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert (
        runner.restrictions.passthrough_modules == sandbox_runner().restrictions.passthrough_modules
    )
