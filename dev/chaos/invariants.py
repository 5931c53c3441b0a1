"""What the audit reports: each invariant, how many things it checked, every violation."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Invariant:
    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)

    def check(self, ok: bool, violation: str) -> None:
        self.checked += 1
        if not ok:
            self.violations.append(violation)
