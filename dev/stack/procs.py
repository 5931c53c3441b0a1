"""Starting, waiting for and stopping child processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

BIN = Path(sys.executable).parent


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if we die without cleaning up (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: stop_all() and the session's end still stop the children


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` different free ports (each held open until all are chosen, so the system
    cannot hand out the same one twice)."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def open_private_log(path: Path) -> BinaryIO:
    """Append to `path`, created (or narrowed) to owner-only permissions."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path | None = None
    # How it was started, so a supervisor can start it again the same way.
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: Path | None = None
    # Run after each (re)start: wait for its port, register what it forgets on restart.
    ready: Callable[[Child], None] | None = None
    user: str | None = None  # run as this system user (PostgreSQL refuses to run as root)

    def on_ready(self, step: Callable[[], None]) -> None:
        """Run `step` after its `ready` step at each (re)start from now on."""
        before = self.ready

        def ready(started: Child) -> None:
            if before is not None:
                before(started)
            step()

        self.ready = ready

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def tail(self, lines: int = 20) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Children:
    started: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        cmd: list[str],
        *,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> Child:
        child = Child(name, _spawn(cmd, log, env, cwd, user), log, cmd, env, cwd, user=user)
        self.started.append(child)
        return child

    def restart(self, child: Child) -> Child:
        """Start an exited child again, the same way; its `ready` step runs again."""
        child.process = _spawn(child.cmd, child.log, child.env, child.cwd, child.user)
        if child.ready is not None:
            child.ready(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.started):
            child.stop()
        self.started.clear()


def _spawn(
    cmd: list[str],
    log: Path | None,
    env: dict[str, str] | None,
    cwd: Path | None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    # Logs may name orders and customers: readable by their owner only.
    out = open_private_log(log) if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            user=user,
            start_new_session=True,  # its own process group, so stop() reaches its children
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        if not isinstance(out, int):
            out.close()  # the child has its own copy


def wait_for_port(child: Child, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with code {child.process.returncode}\n{child.tail()}"
            )
        if port_open(port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{child.name} did not open port {port} in {timeout:.0f}s\n{child.tail()}")


def require_free(port: int, what: str) -> None:
    if port_open(port):
        raise SystemExit(
            f"Port {port} is already in use, so {what} cannot start there. "
            "Stop whatever holds it, or set the matching port variable (see docs/testing.md)."
        )
