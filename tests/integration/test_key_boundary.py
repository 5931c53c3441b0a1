"""One Idempotency-Key names one order across the 24-hour period boundary, even while the
first request's row is not yet committed: the order exists from the moment its workflow
started. On real PostgreSQL (the route reads the catalogue and the key's earlier row),
with Temporal stood in for, so the moment between a workflow's start and its row's commit
can be held open."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from api.order_commands import key_order_ids
from tests.support.integration import order_body
from vult.domain.contracts import PlacedOrder
from vult.domain.status import OrderStatus
from vult.process.settings import Settings


class _Handle:
    def __init__(self, client: _Temporal, workflow_id: str) -> None:
        self._client, self._id = client, workflow_id

    async def describe(self) -> Any:
        started = self._client.started.get(self._id)
        if started is None:
            raise RPCError("not found", RPCStatusCode.NOT_FOUND, b"")
        return type("Described", (), {"start_time": started})()


class _Temporal:
    """Knows of workflows started at given times; records every start asked for."""

    def __init__(self, started: dict[str, datetime]) -> None:
        self.started = started
        self.asked: list[str] = []

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self, workflow_id)

    async def execute_update_with_start_workflow(self, _update: Any, **kwargs: Any) -> Any:
        operation = kwargs["start_workflow_operation"]
        self.asked.append(operation._start_workflow_input.id)
        order_id = uuid.UUID(operation._start_workflow_input.id.removeprefix("order-"))
        return PlacedOrder(order_id=order_id, order_number="VLT-1", status=OrderStatus.Pending)


def create(settings: Settings, temporal: _Temporal, key: str) -> int:
    # An app of its own beside the session's: no metrics port (the session's API has it).
    settings = settings.model_copy(update={"api_metrics_address": ""})
    with TestClient(create_app(settings, temporal=temporal)) as http:  # type: ignore[arg-type]
        response = http.post("/api/orders", json=order_body(), headers={"Idempotency-Key": key})
    return response.status_code


def test_a_retry_just_past_the_boundary_joins_the_order_whose_row_is_not_yet_written(
    settings: Settings,
) -> None:
    key = f"boundary-{uuid.uuid4()}"
    now = datetime.now(UTC)
    current, previous = key_order_ids(key, now)
    # The first request, in the previous period: its workflow started a moment ago (just
    # before the period turned, as far as the key is concerned); its row is not written.
    temporal = _Temporal({f"order-{previous}": now - timedelta(seconds=5)})
    create(settings, temporal, key)
    assert temporal.asked == [f"order-{previous}"]  # the same order, not a second one


def test_without_an_earlier_order_the_key_names_this_periods(settings: Settings) -> None:
    key = f"boundary-{uuid.uuid4()}"
    current, _ = key_order_ids(key, datetime.now(UTC))
    temporal = _Temporal({})
    create(settings, temporal, key)
    assert temporal.asked == [f"order-{current}"]
