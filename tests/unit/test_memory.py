"""The worker's malloc tuning applies on glibc and its trim task stops when cancelled."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from vult.process import memory

glibc = pytest.mark.skipif(memory._libc() is None, reason="not glibc")


@glibc
def test_the_tuning_applies_in_a_fresh_process() -> None:
    code = "from vult.process.memory import tune_malloc; print(tune_malloc())"
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "True"


def test_what_the_environment_sets_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(memory, "_libc", lambda: Libc())
    assert memory.tune_malloc() is True
    assert calls == []


async def test_the_trim_runs_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []

    class Libc:
        def malloc_trim(self, pad: int) -> int:
            trims.append(pad)
            return 1

    monkeypatch.setattr(memory, "_libc", lambda: Libc())
    task = asyncio.create_task(memory.trim_periodically(every=0.01))
    for _ in range(100):
        if len(trims) >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(trims) >= 2 and set(trims) == {0}
