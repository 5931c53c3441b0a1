"""How the long-running processes keep their resident memory down.

glibc's malloc gives each thread that allocates its own arena, up to eight per core, and
keeps freed memory in each. The worker runs Temporal's Rust core (its own threads) and a
pool of workflow threads beside the event loop, so its resident size grew by tens of
megabytes of arenas holding little. Two arenas serve it as fast (the GIL lets one thread run
Python at a time) and cut that (docs/performance.md). MALLOC_ARENA_MAX, when set, wins."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; call before any thread starts. False
    where it does not apply (not glibc, or MALLOC_ARENA_MAX already says)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
