"""Dependencies: everything is built in the lifespan and handed down from app.state.

All are `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread
hop per request for what is an attribute read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.order_commands import OrderCommands
from vult.process.settings import Settings


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # Read-only: the API never writes, so nothing is committed here.
    async with request.app.state.sessions() as session:
        yield session


async def _engine(request: Request) -> AsyncEngine:
    # For the hot routes: a bare connection per read, taken only when needed and held only
    # for the statement, lighter than a session.
    return request.app.state.engine  # type: ignore[no-any-return]


async def _commands(request: Request) -> OrderCommands:
    return request.app.state.commands  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionDep = Annotated[AsyncSession, Depends(_session)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
CommandsDep = Annotated[OrderCommands, Depends(_commands)]
