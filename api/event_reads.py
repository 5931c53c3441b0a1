"""Reads of the outbox for ops (GET /api/ops/events, /api/ops/webhook-endpoints): the
events orders emitted and where each delivery stands. The API never writes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vult.db.models import EVENT_DELIVERIES, ORDER_EVENTS, WEBHOOK_ENDPOINT_STATES
from vult.wire.schemas import DeliveryDto, OrderEventDto

_E, _D = ORDER_EVENTS, EVENT_DELIVERIES


@dataclass(frozen=True)
class EventFilter:
    order_id: uuid.UUID | None = None
    type: str | None = None
    target: str | None = None
    state: str | None = None  # a delivery's
    since: datetime | None = None
    until: datetime | None = None  # excluded (with until_event_id: from that event on)
    # Where the previous page ended: the events at `until` after this id (they are listed
    # newest first, then by id) still come.
    until_event_id: str | None = None


async def list_events(conn: AsyncConnection, where: EventFilter, limit: int) -> list[OrderEventDto]:
    """Newest first, at most `limit`, with their deliveries."""
    query = select(_E.c.event_id, _E.c.type, _E.c.occurred_at, _E.c.body).order_by(
        _E.c.occurred_at.desc(), _E.c.event_id
    )
    if where.order_id is not None:
        query = query.where(_E.c.order_id == where.order_id)
    if where.type is not None:
        query = query.where(_E.c.type == where.type)
    if where.since is not None:
        query = query.where(_E.c.occurred_at >= where.since)
    if where.until is not None and where.until_event_id is not None:
        query = query.where(
            or_(
                _E.c.occurred_at < where.until,
                and_(_E.c.occurred_at == where.until, _E.c.event_id > where.until_event_id),
            )
        )
    elif where.until is not None:
        query = query.where(_E.c.occurred_at < where.until)
    if where.target is not None or where.state is not None:
        matching = select(_D.c.event_id)
        if where.target is not None:
            matching = matching.where(_D.c.target == where.target)
        if where.state is not None:
            matching = matching.where(_D.c.state == where.state)
        query = query.where(_E.c.event_id.in_(matching))
    events = (await conn.execute(query.limit(limit))).all()
    deliveries = await _deliveries(conn, [e.event_id for e in events])
    return [_event(e, deliveries.get(e.event_id, []), with_body=False) for e in events]


async def get_event(conn: AsyncConnection, event_id: str) -> OrderEventDto | None:
    found = (
        await conn.execute(
            select(_E.c.event_id, _E.c.type, _E.c.occurred_at, _E.c.body).where(
                _E.c.event_id == event_id
            )
        )
    ).one_or_none()
    if found is None:
        return None
    deliveries = await _deliveries(conn, [event_id])
    return _event(found, deliveries.get(event_id, []), with_body=True)


@dataclass(frozen=True)
class EndpointState:
    disabled_at: datetime | None
    disabled_reason: str | None
    failing: int
    failed: int


async def endpoint_states(conn: AsyncConnection) -> dict[str, EndpointState]:
    counts = (
        await conn.execute(
            select(_D.c.target, _D.c.state, func.count())
            .where(_D.c.state.in_(["failing", "failed"]))
            .group_by(_D.c.target, _D.c.state)
        )
    ).all()
    disabled = (
        await conn.execute(
            select(
                WEBHOOK_ENDPOINT_STATES.c.name,
                WEBHOOK_ENDPOINT_STATES.c.disabled_at,
                WEBHOOK_ENDPOINT_STATES.c.disabled_reason,
            ).where(WEBHOOK_ENDPOINT_STATES.c.disabled_at.is_not(None))
        )
    ).all()
    names = {t for t, _, _ in counts} | {d.name for d in disabled}
    by_state = {(t, s): n for t, s, n in counts}
    off = {d.name: d for d in disabled}
    return {
        name: EndpointState(
            disabled_at=off[name].disabled_at if name in off else None,
            disabled_reason=off[name].disabled_reason if name in off else None,
            failing=by_state.get((name, "failing"), 0),
            failed=by_state.get((name, "failed"), 0),
        )
        for name in names
    }


async def _deliveries(
    conn: AsyncConnection, event_ids: Sequence[str]
) -> dict[str, list[DeliveryDto]]:
    if not event_ids:
        return {}
    rows = await conn.execute(
        select(_D).where(_D.c.event_id.in_(list(event_ids))).order_by(_D.c.target)
    )
    found: dict[str, list[DeliveryDto]] = {}
    for d in rows:
        found.setdefault(d.event_id, []).append(
            DeliveryDto.model_construct(
                target=d.target,
                state=d.state,
                attempts=d.attempts,
                runs=d.runs,
                last_status=d.last_status,
                last_answer=d.last_answer,
                last_attempt_at=d.last_attempt_at,
                next_attempt_at=d.next_attempt_at,
                delivered_at=d.delivered_at,
            )
        )
    return found


def _event(
    row: Row[Any, Any, Any, Any], deliveries: list[DeliveryDto], *, with_body: bool
) -> OrderEventDto:
    body: dict[str, Any] = row.body
    return OrderEventDto.model_construct(
        event_id=row.event_id,
        type=row.type,
        order_id=uuid.UUID(body["orderId"]),
        order_number=body["orderNumber"],
        occurred_at=row.occurred_at,
        deliveries=deliveries,
        body=body if with_body else None,
    )
