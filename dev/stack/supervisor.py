"""Keeps the local stack's programs running: one that exits is started again, with a
growing pause between tries, and says so. Only Ctrl-C stops the stack."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dev.stack.procs import Child, Children

FIRST_PAUSE = 1.0
LONGEST_PAUSE = 30.0
# A program that has run this long since its last start is healthy again: the pause resets.
SETTLED_AFTER = 60.0


@dataclass
class _Record:
    pause: float = FIRST_PAUSE
    next_try: float = 0.0
    started_at: float = 0.0
    restarts: int = 0


@dataclass
class Supervisor:
    children: Children
    supervised: Callable[[], list[Child]]
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    _records: dict[str, _Record] = field(default_factory=dict)

    def check(self) -> None:
        """Restart whatever has exited and is due for another try."""
        now = self.clock()
        for child in self.supervised():
            record = self._records.setdefault(child.name, _Record(started_at=now))
            code = child.process.poll()
            if code is None:
                if now - record.started_at > SETTLED_AFTER:
                    record.pause = FIRST_PAUSE
                continue
            if now < record.next_try:
                continue
            record.restarts += 1
            self.say(
                f"{child.name} exited with code {code}; starting it again"
                f" (restart {record.restarts})"
            )
            try:
                self.children.restart(child)
            except (RuntimeError, TimeoutError, OSError) as exc:
                self.say(f"{child.name} did not come back: {exc}")
            record.started_at = self.clock()
            record.next_try = record.started_at + record.pause
            record.pause = min(record.pause * 2, LONGEST_PAUSE)

    def restarts(self, name: str) -> int:
        record = self._records.get(name)
        return record.restarts if record else 0
