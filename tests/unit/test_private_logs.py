"""The local stack's log files may name orders and customers: their owner alone reads them."""

from __future__ import annotations

import stat
from pathlib import Path

from dev.stack.procs import open_private_log


def test_a_log_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    with open_private_log(path) as log:
        log.write(b"started\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_log_file_is_narrowed_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    path.write_bytes(b"before\n")
    path.chmod(0o644)
    with open_private_log(path) as log:
        log.write(b"after\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"before\nafter\n"
