"""EventDeliveryWorkflow: one order event to one target (a webhook endpoint of the shop's,
or the customer's e-mail), tried until it is delivered, refused for good, or its tries run
out (docs/events.md). Its id names the event and the target (activities/order_events.py),
so it runs once per (event, target); ops start another run to deliver it again.

It never fails: a try that fails is tried again after the next delay; the last failing
try leaves the delivery `failed` (counted, alerted), visible to ops, who may send it again.
The order's own workflow never waits for it: a receiver down for days delays nothing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError

from vult.domain.contracts import DeliveryAnswer, DeliveryAttempt, DeliveryInput
from workflows import declared_activities as declared
from workflows import ops_view


# AUTO_UPGRADE: a delivery may wait days between tries; it moves to each new build, so
# its histories are in the replay corpus like the order's.
@workflow.defn(name="EventDeliveryWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class EventDeliveryWorkflow:
    @workflow.run
    async def run(self, delivery: DeliveryInput) -> DeliveryAnswer:
        delays = delivery.retry_delays
        tries = len(delays) + 1
        answer = DeliveryAnswer(outcome="try_again")
        for attempt in range(1, tries + 1):
            wait = delays[attempt - 1] if attempt <= len(delays) else None
            try:
                answer = await declared.deliver_event(
                    DeliveryAttempt(
                        event_id=delivery.event_id,
                        target=delivery.target,
                        attempt=attempt,
                        run=delivery.run,
                        next_try_in=wait,
                    )
                )
            except ActivityError as err:  # the try could not even be recorded
                answer = DeliveryAnswer(outcome="try_again", text=f"{err.cause or err}"[:300])
            if answer.outcome != "try_again":
                break
            ops_view.count(
                "vult_event_delivery_tries_failed_total",
                "Tries of an order event's delivery that failed (a receiver or mail server "
                "down, slow or answering an error), by target",
                {"target": delivery.target},
            )
            if wait is None:
                break
            workflow.set_current_details(
                f"Failing: {answer.text} (try {attempt} of {tries}); next try in "
                f"{timedelta(seconds=wait)}"
            )
            await workflow.sleep(timedelta(seconds=wait), summary=f"wait before try {attempt + 1}")
        _count(answer, delivery.target)
        workflow.set_current_details(
            f"{_outcome(answer)} after {attempt} tr{'y' if attempt == 1 else 'ies'}: {answer.text}"
        )
        return answer


@workflow.defn(name="EnableEndpointWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class EnableEndpointWorkflow:
    """Ops turn an endpoint a receiver disabled (410) back on (POST
    /api/ops/webhook-endpoints/{name}/enable); what it missed meanwhile is theirs to send
    again (POST /api/ops/events/redeliver)."""

    @workflow.run
    async def run(self, name: str) -> bool:
        return await declared.enable_endpoint(name)


def _outcome(answer: DeliveryAnswer) -> str:
    return {"try_again": "Failed", "delivered": "Delivered"}.get(
        answer.outcome, answer.outcome.capitalize()
    )


def _count(answer: DeliveryAnswer, target: str) -> None:
    labels = {"target": target}
    if answer.outcome == "delivered":
        ops_view.count("vult_event_deliveries_delivered_total", "Order events delivered", labels)
    elif answer.outcome == "try_again":
        ops_view.count(
            "vult_event_deliveries_failed_total",
            "Order event deliveries that failed every try (alerted; ops may send them again)",
            labels,
        )
    else:
        ops_view.count(
            "vult_event_deliveries_refused_total",
            "Order event deliveries refused for good (an endpoint gone or disabled, an "
            "address the mail server refuses)",
            labels,
        )
