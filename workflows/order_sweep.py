"""The way back for an order whose workflow is gone.

Terminate (the Web UI's "More Actions", `temporal workflow terminate`, a batch terminate)
is the one end no workflow can refuse; a workflow can also fail or time out by a bug or a
misconfiguration. An order whose row says it can still change (not Delivered; a Cancelled
one only while money of it may still move) then has nothing to move it. These bring it
back with a new run of `order-<orderId>`, started from the row and from what Stripe says
now (activities/order_resume.py; workflows/order_actions/resume.py); a run that ended
normally is never resumed.

- OrderSweepWorkflow is what the Temporal Schedule `order-sweep` starts every
  ORDER_SWEEP_INTERVAL (vult/temporal/schedules.py): it finds such orders and resumes each.
- ResumeOrderWorkflow resumes one order at once: the API starts it when a command or a
  webhook meets an order whose workflow is gone (`resume-order-<orderId>`).

Both live seconds, so they are PINNED: they finish on the build they started on.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError

from vult.domain.contracts import ResumeOutcome, SweepReport
from workflows import declared_activities as declared
from workflows import ops_view, patches

# Orders resumed by one sweep; more wait for the next (each is a few calls).
SWEEP_LIMIT = 200
# A delivery still untried this long after its event is one whose start was lost.
PENDING_DELIVERY_AGE_SECONDS = 120


def resume_workflow_id(order_id: uuid.UUID) -> str:
    return f"resume-order-{order_id}"


@workflow.defn(name="OrderSweepWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class OrderSweepWorkflow:
    @workflow.run
    async def run(self) -> SweepReport:
        found = await declared.find_orders_to_resume(SWEEP_LIMIT)
        report = SweepReport(found=len(found))
        workflow.set_current_details(f"Resuming {len(found)} order(s)")
        # All at once: one slow or failing order must not hold the others back (the
        # worker's activity slots bound how many run together).
        outcomes = await asyncio.gather(*(_resume(i) for i in found))
        for order_id, outcome in zip(found, outcomes, strict=True):
            if outcome is None:
                report.failed.append(order_id)
            elif outcome.outcome == "resumed":
                report.resumed.append(order_id)
        if workflow.patched(patches.SWEEP_STARTS_DELIVERIES):
            await _start_pending_deliveries()
        workflow.set_current_details(
            f"Found {report.found} order(s) with no workflow: resumed {len(report.resumed)}, "
            f"failed {len(report.failed)} (tried again by the next sweep)"
        )
        return report


async def _resume(order_id: uuid.UUID) -> ResumeOutcome | None:
    """One order's resume; a failure past its retries is the next sweep's to try again,
    and must not stop the others."""
    try:
        return await declared.resume_order(order_id)
    except ActivityError as err:
        workflow.logger.error("Could not resume order %s: %s", order_id, err.cause or err)
        ops_view.count("vult_order_resumes_failed_total", "Orders the sweep could not resume")
        return None


async def _start_pending_deliveries() -> None:
    """Order events whose deliveries were never started (their start was lost with a
    crash, or their order's workflow terminated right after the write)."""
    try:
        await declared.start_pending_deliveries(PENDING_DELIVERY_AGE_SECONDS)
    except ActivityError as err:
        workflow.logger.error("Could not start pending deliveries: %s", err.cause or err)


@workflow.defn(name="ResumeOrderWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class ResumeOrderWorkflow:
    @workflow.run
    async def run(self, order_id: uuid.UUID) -> ResumeOutcome:
        return await declared.resume_order(order_id)
