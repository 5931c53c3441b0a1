"""The workflow sandbox, the same for the worker, the tests and the replayer."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Modules the sandbox need not re-import for every workflow run. A passed-through module is
# imported once, outside any sandbox, so the sandbox cannot check it: only modules that call
# no clock, no random and no I/O belong here. That is the domain (pure by rule;
# tests/unit/test_structure.py checks it loads no I/O library), the pure libraries it is
# built on, and the pure declarations below. Everything that runs workflow logic is
# re-imported in each sandbox, where the sandbox's runtime checks apply to it.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "vult.domain",
    # Pure modules of the workflow package: declarations and rules that call nothing
    # (activity stubs, policies, the payment decisions). Re-importing them for every
    # workflow cost the worker measurable CPU per order (docs/performance.md); the code
    # that runs workflow logic (order, actions, steps, timer, ops_view, attention) is
    # still re-imported and checked in each sandbox.
    "workflows.activity_stubs",
    "workflows.policies",
    "workflows.decisions",
    "vult.temporal.search_attributes",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
