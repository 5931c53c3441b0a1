"""The event loop our processes run on: uvloop where it is installed (Linux, macOS), the
standard asyncio loop elsewhere. uvloop costs less CPU per socket read and write, which the
worker, the API and the benchmark spend most of their time on (docs/performance.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None where uvloop is not available."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def use_fast_loop() -> bool:
    """Make new event loops uvloop loops; False where uvloop is not available."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(main: Coroutine[Any, Any, T]) -> T:
    use_fast_loop()
    return asyncio.run(main)
