"""The after-close workflow (LatePaymentWorkflow) on the real dev server with the stand-in
activities, driven as the API drives it: a worker for it, the API's commands, Stripe events,
and bounded waits for what it does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from api.order_commands import OrderCommands
from tests.support.workflows import Backend, FakeStripeIntent
from vult.domain.contracts import OrderTiming, PaymentEvent
from vult.domain.pricing import Pricing
from vult.domain.status import OrderStatus
from vult.temporal.deployments import deployment_config, set_current
from vult.temporal.sandbox import sandbox_runner
from workflows.late_payment import LatePaymentWorkflow, late_payment_workflow_id


@asynccontextmanager
async def after_close_commands(
    client: Client, task_queue: str, backend: Backend
) -> AsyncIterator[OrderCommands]:
    """The API's commands, with a worker for the after-close workflow on `backend`.
    LatePaymentWorkflow is PINNED, so its worker is a versioned one, as in production."""
    deployment = f"late-{task_queue}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[LatePaymentWorkflow],
        activities=backend.activities,
        workflow_runner=sandbox_runner(),
        deployment_config=deployment_config(deployment, "1.0.0+gtest"),
    ):
        await set_current(client, deployment, "1.0.0+gtest")
        yield OrderCommands(client, task_queue, OrderTiming(), Pricing(), deadline=10.0)


def stripe_event(pi: str, kind: str) -> PaymentEvent:
    return PaymentEvent(event_id=f"evt_{uuid.uuid4().hex}", event_type=kind, payment_intent_id=pi)


async def until(what: str, check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


async def flag_of(
    client: Client,
    pi: str,
    want: Callable[[str], bool],
    until_done: asyncio.Future[Any] | None = None,
) -> str | None:
    """The after-close workflow's attention flag once `want` holds of it (bounded, 10 s);
    else the last one seen. With `until_done` (its result, awaited), the watch also ends once
    the workflow has ended, after one more look: a flag it never raised stays unraised."""
    handle = client.get_workflow_handle(late_payment_workflow_id(pi))
    flag: str | None = None
    for _ in range(200):
        done = until_done is not None and until_done.done()
        try:
            flag = await handle.query(LatePaymentWorkflow.needs_attention)
        except Exception:
            flag = None  # not started yet
        if flag and want(flag):
            return flag
        if done:
            return flag
        await asyncio.sleep(0.05)
    return flag


AMOUNT = 10800  # the stand-in order's total, in minor units
RETURNED = 5400  # one of its two units


def delivered_with_a_return(backend: Backend, *, failed: bool) -> tuple[uuid.UUID, str, str]:
    """A delivered order, paid in full, whose workflow has closed, and the refund of a
    return of one unit (succeeded, or `failed` at Stripe): (order id, PaymentIntent, the
    return refund's key)."""
    order_id = uuid.uuid4()
    pi = f"pi_{uuid.uuid4().hex[:8]}"
    backend.rows[order_id] = OrderStatus.Delivered
    backend.intents[pi] = FakeStripeIntent(pi, AMOUNT, "usd", str(order_id), status="succeeded")
    key = f"order:{order_id}:return:{pi}:r1"
    backend.refunds[key], backend.refund_amounts[key] = pi, RETURNED
    if failed:
        backend.refund_outcomes[backend._refund_id(key)] = "failed"
    return order_id, pi, key
