"""What a command to an order whose workflow does not answer is told: that the order cannot
run on the current build only when its task keeps failing with a nondeterminism error."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.history.v1 import WorkflowTaskFailedEventAttributes
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

from api.order_commands import stuck_on_build

C = WorkflowTaskFailedCause
NONDETERMINISM = WorkflowTaskFailedEventAttributes(
    cause=C.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
)


def _described(
    attempt: int | None, build: str = "1.0.0+gaaaaaaa"
) -> DescribeWorkflowExecutionResponse:
    described = DescribeWorkflowExecutionResponse()
    described.workflow_execution_info.versioning_info.deployment_version.build_id = build
    if attempt is not None:
        described.pending_workflow_task.attempt = attempt
    return described


def test_a_task_failing_again_with_a_nondeterminism_error_says_what_to_do() -> None:
    message = stuck_on_build(_described(3), NONDETERMINISM)
    assert message is not None
    assert "cannot run on the build that is current now (it last ran on 1.0.0+gaaaaaaa)" in message
    assert "send the command again" in message


@pytest.mark.parametrize(
    ("attempt", "failure"),
    [
        (None, NONDETERMINISM),  # no task pending: the workflow is just slow
        (1, NONDETERMINISM),  # the first try of a task: nothing has failed yet
        (4, None),  # failing, but no failure in the history to say why
        (
            4,
            WorkflowTaskFailedEventAttributes(
                cause=C.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
            ),
        ),
    ],
    ids=["no-task", "first-try", "no-failure", "other-cause"],
)
def test_anything_else_stays_outcome_unknown(
    attempt: int | None, failure: WorkflowTaskFailedEventAttributes | None
) -> None:
    assert stuck_on_build(_described(attempt), failure) is None
