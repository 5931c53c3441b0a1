"""The order events' outbox on PostgreSQL (activities/order_events.py) and the ops listing
of it (api/routes/ops_events.py): a write retried after its commit starts the deliveries
it recorded; paging the listing skips no event. Found by an adversarial review."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from activities.order_db import OrderDbActivities
from activities.order_events import Outbox
from api.app import create_app
from tests.support.workflows import (
    order_request,
)
from vult.db.engine import make_engine
from vult.db.models import EVENT_DELIVERIES
from vult.domain.contracts import (
    CreateOrderRow,
    EmittedEvent,
    StatusChange,
)
from vult.domain.order_events import OrderEventType, event_id
from vult.domain.pricing import Pricing
from vult.domain.status import OrderStatus
from vult.process.outbound import WebhookEndpoint
from vult.process.settings import Settings

S = OrderStatus
E = OrderEventType
OPS_TOKEN = "outbox-ops-token-0123456789abcdef"


# ---- 5. The outbox on PostgreSQL --------------------------------------------------------


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = make_engine(database_url, pool_size=2)
    yield made
    await made.dispose()


class _Temporal:
    """Stands in for the Temporal client the outbox starts deliveries with: the first
    `failures` starts fail as a frontend away for a moment does; the rest are kept."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.started: list[str] = []

    async def start_workflow(self, _workflow: str, _arg: Any, *, id: str, **_: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RPCError("frontend unavailable", RPCStatusCode.UNAVAILABLE, b"")
        self.started.append(id)


def _endpoint() -> WebhookEndpoint:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    return WebhookEndpoint(name="shop", url="http://127.0.0.1:9/hooks", secret=secret)


def _event(order_id: uuid.UUID, kind: OrderEventType, fact: str, at: datetime) -> EmittedEvent:
    return EmittedEvent(event_id=event_id(order_id, kind, fact), type=kind.value, at=at)


async def _placed(db: OrderDbActivities, events: Sequence[EmittedEvent] = ()) -> uuid.UUID:
    order_id = uuid.uuid4()
    await ActivityEnvironment().run(
        db.create_order_row,
        CreateOrderRow(
            order_id=order_id,
            created_at=datetime.now(UTC),
            request=order_request(),
            events=list(events),
        ),
    )
    return order_id


async def test_an_annotate_retried_after_its_commit_starts_the_deliveries_it_recorded(
    engine: AsyncEngine,
) -> None:
    """'If a start is lost ... started by the order-sweep': the write activity is the
    first to try. A transition retried after its commit goes through the 'already applied'
    path, which starts its events' untried deliveries (`Outbox.pending`). A write without
    a transition (`row.annotate`: order.needs_attention, order.refunded/disputed from
    `refunds.learn`) matches its row again on the retry; `Outbox.record` finds the event
    there and `continue`s, so the retry returns success with the delivery recorded but
    never started (left to the sweep, minutes later, if it runs at all)."""
    temporal = _Temporal(failures=1)
    outbox = Outbox(client=temporal, task_queue="q", endpoints=[_endpoint()])  # type: ignore[arg-type]
    db = OrderDbActivities(engine, Pricing(Decimal("0.08"), Decimal("4.99"), "USD"), outbox)
    order_id = await _placed(db)
    at = datetime.now(UTC)
    told = _event(order_id, E.NEEDS_ATTENTION, at.isoformat(), at)
    change = StatusChange(
        order_id=order_id, expected=[S.Pending], new_status=S.Pending, at=at, events=[told]
    )
    env = ActivityEnvironment()
    # Committed, then the start failed: the write stands (the delivery is left pending),
    # and the write run again (a retry after its commit) starts it.
    await env.run(db.change_order_status, change)
    assert temporal.started == []
    await env.run(db.change_order_status, change)
    async with engine.connect() as conn:
        state = (
            await conn.execute(
                select(EVENT_DELIVERIES.c.state, EVENT_DELIVERIES.c.attempts).where(
                    EVENT_DELIVERIES.c.event_id == told.event_id
                )
            )
        ).all()
    assert temporal.started, (
        f"the retried write of {told.type} succeeded, its delivery is {state} in the "
        f"outbox, and no delivery workflow was started (starts: {temporal.started})"
    )


async def test_paging_the_ops_event_list_by_next_until_skips_no_event(
    engine: AsyncEngine, database_url: str
) -> None:
    """GET /api/ops/events pages by `nextUntil`, 'the oldest event's time, excluded'. The
    events of one row write share their time (the workflow's `workflow.now()`: order.
    refunded and order.disputed from one read of Stripe, order.disputed and
    order.dispute_closed, two refunds), so a page that ends between two of them makes the
    next page (`occurred_at < until`) skip the rest: ops never see them, and a range
    resend built the same way misses them too."""
    db = OrderDbActivities(engine, Pricing(Decimal("0.08"), Decimal("4.99"), "USD"))
    at = datetime.now(UTC).replace(microsecond=0)
    order_id = uuid.uuid4()
    first = _event(order_id, E.DISPUTED, "dp_1", at)
    second = _event(order_id, E.DISPUTE_CLOSED, "dp_1", at)
    await ActivityEnvironment().run(
        db.create_order_row,
        CreateOrderRow(
            order_id=order_id, created_at=at, request=order_request(), events=[first, second]
        ),
    )
    settings = Settings(database_url=database_url, ops_api_token=OPS_TOKEN)
    auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
    seen: list[str] = []
    with TestClient(create_app(settings, temporal=object())) as http:  # type: ignore[arg-type]
        query: dict[str, str] = {"orderId": str(order_id), "limit": "1"}
        for _ in range(3):
            page = http.get("/api/ops/events", params=query, headers=auth)
            assert page.status_code == 200, page.text
            body = page.json()
            seen += [e["eventId"] for e in body["events"]]
            if body.get("nextUntil") is None:
                break
            query["until"] = body["nextUntil"]
            query["untilEventId"] = body["nextUntilEventId"]
    assert sorted(seen) == sorted([first.event_id, second.event_id]), (
        f"paging one event at a time by nextUntil and nextUntilEventId listed {seen} of the "
        "order's two events "
        f"{[first.event_id, second.event_id]} (both at {at.isoformat()})"
    )
