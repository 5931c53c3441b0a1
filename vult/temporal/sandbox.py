"""The workflow sandbox, the same for the worker, the tests and the replayer."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Modules the sandbox need not re-import for every workflow run. A passed-through module is
# imported once, outside any sandbox, so the sandbox's runtime checks do not see what it
# calls: only code that calls no clock, no random, no threads and no I/O belongs here.
# - The domain: pure by rule (tests/unit/test_structure.py checks it loads no I/O library),
#   and the pure libraries it is built on.
# - The whole workflow package: workflows/ruff.toml refuses the clock, randomness, threads
#   and I/O in it at lint time (with the structure test's check of builtins, and the replay
#   corpus proving every recorded history still replays). Re-importing it in each new
#   workflow's sandbox was most of the worker's CPU per order (docs/performance.md).
# The sandbox still runs each workflow in its own context and still refuses a restricted
# call made through a module it does import per run.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "vult.domain",
    "vult.temporal.search_attributes",
    "workflows",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
