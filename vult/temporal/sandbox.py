"""The workflow sandbox, the same for the worker, the tests and the replayer."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Modules the sandbox need not re-import for every workflow run: the domain (pure rules
# and value types, no module-level state) and the pure libraries it is built on. Nothing
# that does I/O is passed through, and the workflow code itself is re-imported in each
# sandbox, so determinism is the sandbox's to check, not only the author's. The sandbox's
# runtime checks (no clock, no I/O, no random in workflow code) apply to all of them.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "vult.domain",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
