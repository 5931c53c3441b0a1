"""Ops endpoints for order events (bearer token; docs/events.md): what each order told and
where each delivery stands, sending events again, and the shop's webhook endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, status

from api import event_reads
from api.deps import EngineDep, ResourcesDep, SettingsDep
from api.errors import BadRequest, NotFound
from api.event_commands import EventCommands, Resend
from api.routes.ops import require_ops
from vult.domain.order_events import EMAIL_TARGET, OrderEventType
from vult.process.settings import Settings
from vult.wire.schemas import (
    ErrorResponse,
    OrderEventDto,
    OrderEventPageDto,
    RedeliverDto,
    RedeliveredDto,
    RedeliverRangeDto,
    WebhookEndpointDto,
)

router = APIRouter(
    prefix="/api/ops",
    tags=["ops"],
    dependencies=[Depends(require_ops)],
    responses={401: {"model": ErrorResponse}},
)

# At most this many events are sent again by one range request.
MAX_RESEND = 500
_STATES = ("pending", "failing", "delivered", "failed", "refused", "disabled")


async def _commands(resources: ResourcesDep) -> EventCommands:
    s = resources.settings
    return EventCommands(
        resources.temporal,
        s.delivery_task_queue,
        s.delivery_retry_delays,
        s.temporal_command_timeout_seconds,
    )


EventCommandsDep = Annotated[EventCommands, Depends(_commands)]


@router.get("/events", response_model=OrderEventPageDto)
async def list_events(
    engine: EngineDep,
    order_id: Annotated[uuid.UUID | None, Query(alias="orderId")] = None,
    event_type: Annotated[OrderEventType | None, Query(alias="type")] = None,
    target: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    until_event_id: Annotated[str | None, Query(alias="untilEventId", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrderEventPageDto:
    """Events, newest first, with each delivery's state (`state` and `target` filter on
    the deliveries: `state=failed` lists what ran out of tries)."""
    _check_state(state)
    where = event_reads.EventFilter(
        order_id,
        event_type.value if event_type else None,
        target,
        state,
        since,
        until,
        until_event_id,
    )
    async with engine.connect() as conn:
        events = await event_reads.list_events(conn, where, limit + 1)
    last = events[limit - 1] if len(events) > limit else None
    return OrderEventPageDto(
        events=events[:limit],
        next_until=last.occurred_at if last else None,
        next_until_event_id=last.event_id if last else None,
    )


@router.get(
    "/events/{event_id}", response_model=OrderEventDto, responses={404: {"model": ErrorResponse}}
)
async def get_event(
    event_id: Annotated[str, Path(max_length=64)], engine: EngineDep
) -> OrderEventDto:
    """One event: what every receiver got (`body`) and its deliveries."""
    async with engine.connect() as conn:
        event = await event_reads.get_event(conn, event_id)
    if event is None:
        raise NotFound("No such event")
    return event


@router.post(
    "/events/{event_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RedeliveredDto,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def redeliver(
    event_id: Annotated[str, Path(max_length=64)],
    body: RedeliverDto,
    engine: EngineDep,
    settings: SettingsDep,
    commands: EventCommandsDep,
) -> RedeliveredDto:
    """Send one event again, with the same id, to one target or to each it went to. Its
    tries start over (a new run of its delivery workflow)."""
    async with engine.connect() as conn:
        event = await event_reads.get_event(conn, event_id)
    if event is None:
        raise NotFound("No such event")
    resends = _resends(settings, [event], body.target)
    return RedeliveredDto(started=await commands.redeliver(resends))


@router.post(
    "/events/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RedeliveredDto,
    responses={400: {"model": ErrorResponse}},
)
async def redeliver_range(
    body: RedeliverRangeDto,
    engine: EngineDep,
    settings: SettingsDep,
    commands: EventCommandsDep,
) -> RedeliveredDto:
    """Send again every event of a range (at most 500: narrow it for more)."""
    if body.until <= body.since:
        raise BadRequest("`until` must be after `since`")
    if body.type is not None and body.type not in {t.value for t in OrderEventType}:
        raise BadRequest(f"Unknown event type {body.type!r}")
    _check_state(body.state)
    where = event_reads.EventFilter(
        None, body.type, body.target, body.state, body.since, body.until
    )
    async with engine.connect() as conn:
        events = await event_reads.list_events(conn, where, MAX_RESEND + 1)
    if len(events) > MAX_RESEND:
        raise BadRequest(f"More than {MAX_RESEND} events match: narrow the range")
    resends = _resends(settings, events, body.target, state=body.state)
    return RedeliveredDto(started=await commands.redeliver(resends))


@router.get("/webhook-endpoints", response_model=list[WebhookEndpointDto])
async def list_endpoints(engine: EngineDep, settings: SettingsDep) -> list[WebhookEndpointDto]:
    """The shop's endpoints (WEBHOOK_ENDPOINTS): disabled or not, deliveries failing."""
    async with engine.connect() as conn:
        states = await event_reads.endpoint_states(conn)
    found = []
    for e in settings.webhook_endpoints:
        s = states.get(e.name)
        parts = urlsplit(e.url)
        found.append(
            WebhookEndpointDto(
                name=e.name,
                url=f"{parts.scheme}://{parts.netloc}{parts.path}",
                events=e.events,
                disabled_at=s.disabled_at if s else None,
                disabled_reason=s.disabled_reason if s else None,
                failing=s.failing if s else 0,
                failed=s.failed if s else 0,
            )
        )
    return found


@router.post(
    "/webhook-endpoints/{name}/enable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorResponse}},
)
async def enable_endpoint(
    name: Annotated[str, Path(max_length=100)], settings: SettingsDep, commands: EventCommandsDep
) -> None:
    """Turn back on an endpoint its receiver disabled (410). What it missed is not sent by
    itself: send it again with POST /api/ops/events/redeliver."""
    if name not in {e.name for e in settings.webhook_endpoints}:
        raise NotFound("No endpoint of this name in WEBHOOK_ENDPOINTS")
    await commands.enable_endpoint(name)


def _check_state(state: str | None) -> None:
    if state is not None and state not in _STATES:
        raise BadRequest(f"Unknown delivery state {state!r}; one of {', '.join(_STATES)}")


def _resends(
    settings: Settings,
    events: list[OrderEventDto],
    target: str | None,
    state: str | None = None,
) -> list[Resend]:
    known = {e.name for e in settings.webhook_endpoints} | (
        {EMAIL_TARGET} if settings.smtp_host else set()
    )
    if target is not None and target not in known:
        raise BadRequest(
            f"No target {target!r}: one of the WEBHOOK_ENDPOINTS names, or 'email' when "
            "SMTP_HOST is set"
        )
    resends = []
    for event in events:
        runs = {d.target: (d.runs, d.state) for d in event.deliveries}
        targets = [target] if target is not None else [t for t in runs if t in known]
        for t in targets:
            done_runs, at = runs.get(t, (0, None))
            if state is not None and at != state:
                continue
            resends.append(Resend(event.event_id, event.type, t, done_runs))
    return resends
