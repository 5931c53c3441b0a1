"""Each test is in one tier by its folder, and a tier skipped as a whole is named with its
reason in the run's summary (tests/support/tiers.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.tiers import TESTS, summary, tier_of


@dataclass
class Report:
    nodeid: str
    when: str = "call"
    longrepr: object = None


def test_every_folder_of_tests_has_its_tier() -> None:
    assert tier_of(TESTS / "integration" / "browser" / "test_checkout_page.py") == "browser"
    assert tier_of(TESTS / "integration" / "test_lifecycle.py") == "integration"
    assert tier_of(TESTS / "workflows" / "test_money_model.py") == "workflow"
    assert tier_of(Path(__file__)) == "unit"
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    untiered = sorted(str(f.relative_to(TESTS)) for f in folders if tier_of(f / "x.py") is None)
    assert untiered == [], f"folders of tests with no tier: {untiered}"


def node(folder: str, test: str) -> str:
    """A test's node id in `folder` of tests/ (made up: the summary reads only the path)."""
    return f"tests/{folder}/test_{test}.py::test_{test}"


def test_a_tier_skipped_as_a_whole_is_named_with_its_reason() -> None:
    reason = ("conftest", 43, "Skipped: no Chromium found")
    browser = "integration/browser"
    lines = summary(
        {
            "passed": [Report(node("unit", "a")), Report(node("unit", "b"))],
            "skipped": [
                Report(node(browser, "a"), "setup", reason),
                Report(node(browser, "b"), "setup", reason),
            ],
            "failed": [Report(node("workflows", "w"))],
        }
    )
    assert lines == [
        "browser: SKIPPED as a whole (2): no Chromium found",
        "workflow: 1 failed",
        "unit: 2 passed",
    ]
