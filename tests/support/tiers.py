"""The suite's tiers, one marker each, given by where a test lives, and the line per tier
the run ends with: a tier skipped as a whole (the browser tests without Chromium) is
named there with its reason, not only counted among the skips.

    python3 tasks.py test -m "unit or workflow or replay"   # the fast loop
    python3 tasks.py test -m browser                         # one tier
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

# Directory under tests/ -> tier (the first that matches, most specific first).
TIERS: list[tuple[str, str, str]] = [
    ("integration/browser", "browser", "the checkout page in headless Chromium"),
    ("integration", "integration", "the real dev server, PostgreSQL and localstripe"),
    ("workflows", "workflow", "OrderWorkflow on the real dev server, stand-in activities"),
    ("replay", "replay", "every recorded history replayed on today's code"),
    ("unit", "unit", "domain rules, money, validation, no servers"),
    ("chaos", "chaos", "the short chaos run and its audit"),
    ("production", "production", "the compose services' commands as plain processes"),
    ("stack", "stack", "the local stack's supervision"),
]
TESTS = Path(__file__).resolve().parents[1]


def tier_of(path: Path) -> str | None:
    try:
        relative = path.resolve().relative_to(TESTS).as_posix()
    except ValueError:
        return None
    for folder, tier, _ in TIERS:
        if relative == folder or relative.startswith(f"{folder}/"):
            return tier
    return None


LONG = (
    "long: a file one test of which runs for most of a minute or more; under pytest-xdist it "
    "is handed out first (tests/support/tiers.py, first_the_long_files)"
)


def markers() -> list[str]:
    return [f"{tier}: {what}" for _, tier, what in TIERS] + [LONG]


def first_the_long_files(items: list[pytest.Item]) -> None:
    """The order pytest-xdist hands out files in (`--dist loadfile` with
    `--no-loadscope-reorder`, pyproject.toml): the files marked `long` first, then the rest
    with the most tests first, as xdist's own reordering would. Left to that reordering, a
    file of one long test (the chaos run, the money model) went last, and the run waited for
    it on one worker while the other stood idle. The order within a file is kept."""
    count: Counter[str] = Counter()
    first: dict[str, int] = {}
    long: set[str] = set()
    for index, item in enumerate(items):
        name = item.nodeid.split("::")[0]
        count[name] += 1
        first.setdefault(name, index)
        if item.get_closest_marker("long") is not None:
            long.add(name)
    position = {id(item): index for index, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[bool, int, int, int]:
        name = item.nodeid.split("::")[0]
        return (name not in long, -count[name], first[name], position[id(item)])

    items.sort(key=key)


def mark(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(Path(str(item.fspath)))
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))


def summary(stats: dict[str, list[object]]) -> list[str]:
    """One line per tier that ran: its counts, and the reason when all of it was skipped."""
    counts: dict[str, Counter[str]] = {}
    reasons: dict[str, str] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            when = getattr(report, "when", "call")
            if not nodeid or (outcome == "passed" and when != "call"):
                continue
            tier = tier_of(TESTS.parent / nodeid.split("::")[0])
            if tier is None:
                continue
            counts.setdefault(tier, Counter())[outcome] += 1
            longrepr = getattr(report, "longrepr", None)
            if outcome == "skipped" and isinstance(longrepr, tuple) and len(longrepr) == 3:
                reasons.setdefault(tier, str(longrepr[2]).removeprefix("Skipped: "))
    lines = []
    for _, tier, _ in TIERS:
        if tier not in counts:
            continue
        c = counts[tier]
        said = ", ".join(f"{n} {outcome}" for outcome, n in c.items() if n)
        if c["skipped"] and not (c["passed"] or c["failed"] or c["error"]):
            lines.append(f"{tier}: SKIPPED as a whole ({c['skipped']}): {reasons.get(tier, '')}")
        else:
            lines.append(f"{tier}: {said}")
    return lines
