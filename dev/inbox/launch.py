"""Starting the inbox as a child process: of the dev stack (dev/stack/stack.py) or of a test
(tests/support/inbox.py). Its `ready` step waits for both its ports, at each (re)start."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from dev.stack.procs import Child, Children, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def inbox_command(
    *, smtp_port: int, http_port: int, data_dir: Path, endpoints: Mapping[str, str]
) -> list[str]:
    cmd = [sys.executable, "-m", "dev.inbox", "--smtp-port", str(smtp_port)]
    cmd += ["--http-port", str(http_port), "--data-dir", str(data_dir)]
    for name, secret in endpoints.items():
        cmd += ["--endpoint", f"{name}={secret}"]
    return cmd


def start_inbox(
    children: Children,
    *,
    smtp_port: int,
    http_port: int,
    data_dir: Path,
    endpoints: Mapping[str, str],
    log: Path | None,
    name: str = "inbox",
) -> Child:
    """The inbox on 127.0.0.1, once both its ports take connections."""
    cmd = inbox_command(
        smtp_port=smtp_port, http_port=http_port, data_dir=data_dir, endpoints=endpoints
    )
    child = children.start(name, cmd, log=log, cwd=ROOT)

    def ready(started: Child) -> None:
        wait_for_port(started, http_port, timeout=30)
        wait_for_port(started, smtp_port, timeout=30)

    child.ready = ready
    ready(child)
    return child
