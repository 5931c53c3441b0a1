"""Dependencies: the one way a route reaches what the lifespan built.

Everything lives in one typed `Resources`, built in the lifespan (api/app.py) and read
here. All dependencies are `async def`: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop per request for what is an attribute read."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import stripe
from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.converter import PayloadCodec

from api import stripe_webhooks
from api.client_limits import ClientLimits, client_of
from api.errors import BadRequest, Unauthorized
from api.metrics import WEBHOOK_EVENTS, WEBHOOK_SIGNATURE_FAILURES
from api.order_changes import OrderChanges
from api.order_commands import OrderCommands
from vult.process.settings import Settings

log = logging.getLogger("vult.api.webhooks")


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    temporal: Client
    codec: PayloadCodec | None
    commands: OrderCommands
    order_changes: OrderChanges
    client_limits: ClientLimits


async def _resources(request: Request) -> Resources:
    resources = request.app.state.resources
    assert isinstance(resources, Resources), "the lifespan has not run"
    return resources


ResourcesDep = Annotated[Resources, Depends(_resources)]


async def _settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def _engine(resources: ResourcesDep) -> AsyncEngine:
    # The API's one way to PostgreSQL: SQLAlchemy Core on a connection taken from the engine
    # only when needed and held only for its statements (it never writes).
    return resources.engine


async def _commands(resources: ResourcesDep) -> OrderCommands:
    return resources.commands


async def _order_changes(resources: ResourcesDep) -> OrderChanges:
    return resources.order_changes


async def _codec(resources: ResourcesDep) -> PayloadCodec | None:
    return resources.codec


async def _temporal(resources: ResourcesDep) -> Client:
    return resources.temporal


async def _verified_event(
    request: Request,
    settings: Annotated[Settings, Depends(_settings)],
    stripe_signature: Annotated[str, Header()] = "",
) -> stripe.Event:
    """The Stripe event in the body, once its signature is verified (401 otherwise)."""
    try:
        event = stripe_webhooks.verify(
            await request.body(),
            stripe_signature,
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_webhook_tolerance_seconds,
        )
    except stripe_webhooks.SignatureError as exc:
        WEBHOOK_SIGNATURE_FAILURES.inc()
        log.warning("refused a Stripe webhook: %s", exc)
        raise Unauthorized(str(exc)) from exc
    except stripe_webhooks.MalformedEvent as exc:
        raise BadRequest(str(exc)) from exc
    WEBHOOK_EVENTS.labels(type=event.type).inc()
    return event


async def _client_command(request: Request, resources: ResourcesDep) -> AsyncIterator[None]:
    """One of the client's command places while the request runs (429 when it has none)."""
    with resources.client_limits.holding("command", client_of(request)):
        yield


async def _client_wait(request: Request, resources: ResourcesDep) -> AsyncIterator[None]:
    """One of the client's wait places while the request runs (429 when it has none)."""
    with resources.client_limits.holding("wait", client_of(request)):
        yield


# Per-client bounds (api/client_limits.py), as a route's `dependencies=[...]`.
CLIENT_COMMAND = Depends(_client_command)
CLIENT_WAIT = Depends(_client_wait)

SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
CommandsDep = Annotated[OrderCommands, Depends(_commands)]
OrderChangesDep = Annotated[OrderChanges, Depends(_order_changes)]
CodecDep = Annotated[PayloadCodec | None, Depends(_codec)]
TemporalDep = Annotated[Client, Depends(_temporal)]
VerifiedEventDep = Annotated[stripe.Event, Depends(_verified_event)]
