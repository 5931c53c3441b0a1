"""Every project file a comment, docstring or document names exists: a moved or renamed
file leaves no reader following a path to nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP = ("vult", "api", "workflows", "activities", "tests", "dev", "docs", "migrations", "deploy")
PATH = re.compile(
    r"(?<![\w/.-])((?:"
    + "|".join(TOP)
    + r")/(?:[\w.-]+/)*[\w-]+\.(?:py|md|json|js|yml|yaml|toml|ini))(?!\w)"
)
# Named on purpose though absent: the name a lint probe is checked under.
NOT_FILES = {"workflows/probe.py"}


def _named() -> list[tuple[str, int, str]]:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in files:
        if name.startswith("tests/replay/0") or Path(name).suffix not in (
            ".py",
            ".md",
            ".toml",
            ".ini",
            ".yml",
            ".yaml",
            ".js",
            ".html",
        ):
            continue
        text = (ROOT / name).read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            found += [(name, number, p) for p in PATH.findall(line) if p not in NOT_FILES]
    return found


def test_every_named_project_file_exists() -> None:
    named = _named()
    assert len(named) > 50  # the scan finds the paths the tree names
    missing = [f"{f}:{n}: {p}" for f, n, p in named if not (ROOT / p).exists()]
    assert not missing, missing
