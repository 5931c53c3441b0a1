"""Dependencies: everything is built in the lifespan and handed down from app.state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.order_commands import OrderCommands
from vult.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # Read-only: the API never writes, so nothing is committed here.
    async with request.app.state.sessions() as session:
        yield session


async def _connection(request: Request) -> AsyncIterator[AsyncConnection]:
    # A bare connection for the hottest read: lighter than a session.
    async with request.app.state.engine.connect() as connection:
        yield connection


def _commands(request: Request) -> OrderCommands:
    return request.app.state.commands  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionDep = Annotated[AsyncSession, Depends(_session)]
ConnectionDep = Annotated[AsyncConnection, Depends(_connection)]
CommandsDep = Annotated[OrderCommands, Depends(_commands)]
