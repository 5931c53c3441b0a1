"""Each test is in one tier by its folder, and a tier skipped as a whole is named with its
reason in the run's summary (tests/support/tiers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.tiers import TESTS, summary, tier_of


@dataclass
class Report:
    nodeid: str
    when: str = "call"
    longrepr: object = None


def test_every_folder_of_tests_has_its_tier() -> None:
    assert tier_of(TESTS / "integration/browser/test_checkout_page.py") == "browser"
    assert tier_of(TESTS / "integration/test_lifecycle.py") == "integration"
    assert tier_of(TESTS / "workflows/test_money_model.py") == "workflow"
    assert tier_of(TESTS / "unit/test_tiers.py") == "unit"
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    untiered = sorted(str(f.relative_to(TESTS)) for f in folders if tier_of(f / "x.py") is None)
    assert untiered == [], f"folders of tests with no tier: {untiered}"


def test_a_tier_skipped_as_a_whole_is_named_with_its_reason() -> None:
    reason = ("tests/integration/browser/conftest.py", 43, "Skipped: no Chromium found")
    lines = summary(
        {
            "passed": [Report("tests/unit/test_a.py::test_one"), Report("tests/unit/x.py::t")],
            "skipped": [
                Report("tests/integration/browser/test_checkout_page.py::test_a", "setup", reason),
                Report("tests/integration/browser/test_checkout_page.py::test_b", "setup", reason),
            ],
            "failed": [Report("tests/workflows/test_w.py::test_w")],
        }
    )
    assert lines == [
        "browser: SKIPPED as a whole (2): no Chromium found",
        "workflow: 1 failed",
        "unit: 2 passed",
    ]
