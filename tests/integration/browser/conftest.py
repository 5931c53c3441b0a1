"""Headless Chromium (the operating system's: Playwright cannot download its own here)
driving the shop's checkout page on the real local stack. Without a Chromium the browser
tests are skipped with one line saying so; `.ci/run` installs it, so CI always runs them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.integration import RunningWorker

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
# As the machine's notes advise: no sandbox as root, and none of Chromium's own network
# traffic (this machine reaches no Google host).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set CHROMIUM)")
    return path


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=FLAGS
        )
        yield launched
        await launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def page(
    browser: Browser, api_url: str, worker: RunningWorker, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A phone-sized page (375 px wide) on the shop; a screenshot is kept if the test fails."""
    context = await browser.new_context(base_url=api_url, viewport={"width": 375, "height": 900})
    context.set_default_timeout(20_000)
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(str(exc)))
    opened.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield opened
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        await opened.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    await context.close()
    assert problems == [], problems  # no script error, nothing the CSP had to block
