"""OrderWorkflow as a next build might change it, for the deploy test and the replay gate:
delivery also writes who delivered in the memo, a command no recorded history holds."""

from __future__ import annotations

from temporalio import workflow

from vult.domain.contracts import OrderState, OrderWorkflowInput
from workflows.order import OrderWorkflow


class _MemoOnDelivery(OrderWorkflow):
    """`GUARD`: the patch id the change is behind, or None for the change as it must never
    ship; `MEMO`: the value written."""

    GUARD: str | None = None
    MEMO = ""

    # The next build's handler in place of this one's: the SDK's decorated types do not
    # describe an override, nor calling the parent's handler directly.
    @workflow.update
    async def deliver(self) -> None:  # type: ignore[override]
        await OrderWorkflow.deliver(self)  # type: ignore[misc]
        if self.GUARD is None or workflow.patched(self.GUARD):
            workflow.upsert_memo({"deliveredBy": self.MEMO})

    @deliver.validator
    def _validate_deliver_with_memo(self) -> None:
        OrderWorkflow._validate_deliver(self)


# The SDK wants each defined class to declare its own run method.
@workflow.defn(name="OrderWorkflow")  # the deployment's default behaviour, as the real one
class BuildB(_MemoOnDelivery):
    """The deploy test's build B."""

    GUARD, MEMO = "deploy-test-delivery-memo", "B"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderState:
        return await OrderWorkflow.run(self, input)


@workflow.defn(name="OrderWorkflow")
class UnguardedChange(_MemoOnDelivery):
    MEMO = "unguarded"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderState:
        return await OrderWorkflow.run(self, input)


@workflow.defn(name="OrderWorkflow")
class GuardedChange(_MemoOnDelivery):
    GUARD, MEMO = "replay-gate-example", "guarded"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderState:
        return await OrderWorkflow.run(self, input)
