"""How the long-running processes keep their resident memory down (glibc's malloc; other C
libraries are left alone).

- Two arenas: glibc gives each thread that allocates its own arena, up to eight per core,
  each keeping memory freed in it. The worker runs Temporal's Rust core (its own threads)
  and a pool of workflow threads beside the event loop; two arenas serve it as fast (the GIL
  runs one thread of Python at a time). MALLOC_ARENA_MAX, when set, wins.
- A fixed mmap threshold: glibc raises it each time a large block is freed, until blocks of
  up to 32 MB come from the heap, where a few live ones pin the freed memory around them.
  Fixed, large blocks are mapped and unmapped on their own. MALLOC_MMAP_THRESHOLD_ wins.
- A periodic trim: malloc_trim(0) hands the heap's free pages back to the system.

The measurements are in docs/performance.md."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
from typing import Any

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers
_M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept
TRIM_EVERY_SECONDS = 30.0


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None  # musl and others
    return libc


def tune_malloc() -> bool:
    """Cap the arenas and fix the mmap threshold for this process; call before any thread
    starts. False where it does not apply."""
    libc = _libc()
    if libc is None:
        return False
    done = True
    if "MALLOC_ARENA_MAX" not in os.environ:
        done = bool(libc.mallopt(_M_ARENA_MAX, ARENAS)) and done
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        done = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and done
    return done


async def trim_periodically(every: float = TRIM_EVERY_SECONDS) -> None:
    """Give free heap pages back every `every` seconds, until cancelled."""
    libc = _libc()
    if libc is None:
        return
    while True:
        await asyncio.sleep(every)
        libc.malloc_trim(0)
